#pragma once
// One include for Asio in this project. GCC 12 with Boost 1.74: awaitable.hpp uses
// std::exchange without including <utility>, so it must come first.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace daemonlet {
namespace asio = boost::asio;
}  // namespace daemonlet
