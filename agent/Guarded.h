#pragma once
// How the agent starts coroutines. asio::detached drops an exception silently, which once
// left an action "in flight" forever; here an escaped exception always reaches a handler
// that logs it, counts it and lets the caller clean up.
#include <exception>
#include <functional>
#include <string>
#include <utility>

#include "runtime/Asio.h"

namespace daemonlet::agent {

// "what(): message" for an exception_ptr of any type.
std::string describeException(std::exception_ptr e);

using InternalErrorHandler = std::function<void(const std::string& where, const std::string& what)>;

inline void spawnGuarded(asio::any_io_executor executor, asio::awaitable<void> work, std::string where,
                         InternalErrorHandler onError) {
  asio::co_spawn(executor, std::move(work), [where = std::move(where), onError = std::move(onError)](std::exception_ptr e) {
    if (e && onError) onError(where, describeException(e));
  });
}

}  // namespace daemonlet::agent
