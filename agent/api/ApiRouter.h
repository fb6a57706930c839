#pragma once
// The introspection API's routing (DESIGN 3.7), apart from the sockets: one parsed request
// in, one response out. Pure of I/O, so it is unit-tested and fuzzed without a listener.
#include <cstddef>
#include <string>

#include <boost/beast/http.hpp>

#include "agent/Logger.h"
#include "agent/api/StatusDocuments.h"

namespace daemonlet::agent {

// Where the documents come from and where a drain request goes.
class ApiBackend {
 public:
  virtual ~ApiBackend() = default;
  virtual const Plan& plan() const = 0;
  virtual InstanceInfo instance() const = 0;
  virtual const AgentMetrics& metrics() const = 0;
  virtual bool loopAlive() const = 0;
  virtual void requestDrain() = 0;
  // Admit application tasks again. False (and nothing changes) while a shutdown runs.
  virtual bool requestUndrain() = 0;
};

class ApiRouter {
 public:
  // The TCP listener is read-only and refuses browsers; the unix socket also drains.
  enum class Channel { Tcp, Socket };
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  static constexpr std::size_t kMaxBody = 64 * 1024;

  ApiRouter(ApiBackend& backend, Logger& log) : backend_(backend), log_(log) {}

  Response handle(const Request& request, Channel channel);
  // The one answer to bytes that are not an HTTP request; the connection closes after it.
  static Response malformed(const std::string& why);

 private:
  ApiBackend& backend_;
  Logger& log_;
};

}  // namespace daemonlet::agent
