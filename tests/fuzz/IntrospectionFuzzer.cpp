// The introspection API reads whatever a local process sends. Bytes go through Beast's
// request parser with the listener's body limit, as on the socket, then, when they form a
// request, through the routing on both channels. Invariants a user relies on: the TCP
// listener never drains, and every answer is a well-formed status.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>

#include <boost/asio/buffer.hpp>

#include "agent/api/ApiRouter.h"

namespace {

using namespace daemonlet;
using namespace daemonlet::agent;
namespace http = boost::beast::http;

struct Backend : ApiBackend {
  Plan p;
  AgentMetrics m;
  int drains = 0;
  int undrains = 0;
  Backend() {
    p.phase = Phase::Active;
    DaemonStatus d;
    d.family = "metrics";
    d.status = Status::Running;
    d.containers = {{"agent", "abc123", "running", std::nullopt}};
    p.daemons = {d};
    TaskStatus t;
    t.id = "web-1";
    t.family = "web";
    p.tasks = {t};
  }
  const Plan& plan() const override { return p; }
  InstanceInfo instance() const override { return {"prod", "i-1", "0.1.0", {4096, 8192}, {0, 256}, "docker", {}, {}}; }
  const AgentMetrics& metrics() const override { return m; }
  bool loopAlive() const override { return true; }
  void requestDrain() override { ++drains; }
  bool requestUndrain() override {
    ++undrains;
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::ostringstream logs;
  Logger log{logs};
  Backend backend;
  ApiRouter router(backend, log);

  http::request_parser<http::string_body> parser;
  parser.body_limit(ApiRouter::kMaxBody);
  boost::system::error_code ec;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) break;
    if (ec) {
      (void)ApiRouter::malformed(ec.message());
      return 0;
    }
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_done()) return 0;
  const auto tcp = router.handle(parser.get(), ApiRouter::Channel::Tcp);
  if (backend.drains != 0 || backend.undrains != 0) __builtin_trap();  // the TCP listener is read-only
  const auto socket = router.handle(parser.get(), ApiRouter::Channel::Socket);
  for (const auto* res : {&tcp, &socket}) {
    if (res->result_int() < 200 || res->result_int() > 599) __builtin_trap();
  }
  return 0;
}
