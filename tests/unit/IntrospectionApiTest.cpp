// The introspection API over real sockets: libcurl as the client, raw sockets for
// garbage and for a client that holds its connection open.
#include <atomic>
#include <sstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/api/ApiClient.h"
#include "agent/api/IntrospectionApi.h"

using namespace daemonlet;
using namespace daemonlet::agent;
using nlohmann::json;

namespace {

struct FakeAgent : ApiBackend {
  Plan p;
  AgentMetrics m;
  std::atomic<bool> drained{false};

  FakeAgent() {
    p.phase = Phase::Active;
    p.memory.gateOpenedAt = std::chrono::steady_clock::now();
    p.memory.gateReason = "1/1 critical daemons up";
    DaemonStatus d;
    d.family = "metrics";
    d.revision = 3;
    d.status = Status::Running;
    d.health = runtime::Health::Healthy;
    d.restarts = 2;
    d.containers = {{"agent", "abc123", "running", std::nullopt}};
    p.daemons = {d};
    TaskStatus t;
    t.id = "web-1";
    t.family = "web";
    t.revision = 4;
    t.status = Status::Stopped;
    t.stoppedReason = "RESOURCE:MEMORY";
    p.tasks = {t};
    p.daemonReserved = {128, 64};
    p.available = {3000, 7000};
  }
  const Plan& plan() const override { return p; }
  InstanceInfo instance() const override {
    return {"prod", "i-1", "0.1.0", {4096, 8192}, {0, 256}, "docker 20.10.24", {{"c0ffee", "daemonlet-task-old-main-0123456789ab", "i-0", Kind::Task, "old", true}}, {}};
  }
  const AgentMetrics& metrics() const override { return m; }
  bool loopAlive() const override { return true; }
  void requestDrain() override { drained = true; }
  bool requestUndrain() override {
    if (shuttingDown) return false;
    drained = false;
    return true;
  }
  std::atomic<bool> shuttingDown{false};
};

// The API on its own io_context thread, as in the agent.
struct Server {
  asio::io_context io;
  std::ostringstream logs;
  Logger log{logs};
  FakeAgent agent;
  IntrospectionApi api{io.get_executor(), agent, log};
  std::thread thread;
  std::string listen;
  std::string socket = "/tmp/daemonlet-api-test-" + std::to_string(::getpid()) + ".sock";

  Server() {
    REQUIRE(api.listen("127.0.0.1:0", false).ok());
    REQUIRE(api.listenSocket(socket).ok());
    listen = "127.0.0.1:" + std::to_string(api.port());
    thread = std::thread([this] {
      auto guard = asio::make_work_guard(io);
      io.run();
    });
  }
  ~Server() {
    asio::post(io, [this] { api.stop(); io.stop(); });
    thread.join();
  }
};

std::string rawExchange(unsigned short port, const std::string& bytes) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(s, asio::buffer(bytes));
  std::string out;
  boost::system::error_code ec;
  char buf[1024];
  for (std::size_t n; (n = s.read_some(asio::buffer(buf), ec)) > 0 && !ec;) out.append(buf, n);
  return out;
}

}  // namespace

TEST_CASE("api: the documents of DESIGN 3.7 with their field names") {
  Server s;
  auto meta = callApi(s.listen, "GET", "/v1/metadata");
  REQUIRE(meta.status == 200);
  auto m = json::parse(meta.body);
  CHECK(m["cluster"] == "prod");
  CHECK(m["instanceId"] == "i-1");
  CHECK(m["phase"] == "ACTIVE");
  CHECK(m["capacity"] == json({{"cpu", 4096}, {"memory", 8192}}));
  CHECK(m["reserved"]["memory"] == 256);
  CHECK(m["daemonReserved"]["cpu"] == 128);
  CHECK(m["available"]["memory"] == 7000);

  auto daemons = json::parse(callApi(s.listen, "GET", "/v1/daemons").body);
  REQUIRE(daemons.size() == 1);
  for (const char* field : {"family", "revision", "status", "health", "containers", "startedAt", "restarts", "lastError"})
    CHECK(daemons[0].contains(field));
  CHECK(daemons[0]["health"] == "HEALTHY");
  CHECK(daemons[0]["restarts"] == 2);
  CHECK(daemons[0]["containers"][0] == json({{"name", "agent"}, {"id", "abc123"}, {"status", "running"}, {"exitCode", nullptr}}));

  auto tasks = json::parse(callApi(s.listen, "GET", "/v1/tasks").body);
  CHECK(tasks[0]["stoppedReason"] == "RESOURCE:MEMORY");
  auto one = callApi(s.listen, "GET", "/v1/tasks/web-1");
  REQUIRE(one.status == 200);
  CHECK(json::parse(one.body)["id"] == "web-1");
  auto missing = callApi(s.listen, "GET", "/v1/tasks/nope");
  CHECK(missing.status == 404);
  CHECK(json::parse(missing.body)["error"] == "no task 'nope' on this instance");
}

TEST_CASE("api: health, readiness and Prometheus metrics") {
  Server s;
  CHECK(callApi(s.listen, "GET", "/healthz").status == 200);
  CHECK(callApi(s.listen, "GET", "/readyz").status == 200);
  auto metrics = callApi(s.listen, "GET", "/metrics");
  REQUIRE(metrics.status == 200);
  for (const char* line : {"daemonlet_phase{phase=\"ACTIVE\"} 1", "daemonlet_phase{phase=\"DRAINING\"} 0", "daemonlet_daemons{status=\"RUNNING\"} 1",
                           "daemonlet_tasks{status=\"STOPPED\"} 1", "daemonlet_memory_mib{kind=\"available\"} 7000",
                           "daemonlet_daemon_restarts_total{family=\"metrics\"} 2", "# TYPE daemonlet_reconcile_duration_seconds histogram",
                           "daemonlet_reconcile_duration_seconds_count 0"}) {
    INFO(line);
    CHECK(metrics.body.find(line) != std::string::npos);
  }
}

TEST_CASE("api: readyz is 503 while the slot gate is closed") {
  Server s;
  asio::post(s.io, [&] { s.agent.p.memory.gateOpenedAt.reset(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto r = callApi(s.listen, "GET", "/readyz");
  CHECK(r.status == 503);
  CHECK(r.body.find("slot gate closed") != std::string::npos);
}

TEST_CASE("api (DESIGN 3.7): drain is a POST on the API socket, the TCP listener is read-only") {
  Server s;
  CHECK(callApi(s.socket, "GET", "/v1/drain").status == 405);
  auto tcp = callApi(s.listen, "POST", "/v1/drain");
  CHECK(tcp.status == 405);
  CHECK(tcp.body.find("read-only") != std::string::npos);
  CHECK(callApi(s.listen, "DELETE", "/v1/drain").status == 405);
  CHECK(callApi(s.listen, "POST", "/v1/anything").status == 405);
  CHECK_FALSE(s.agent.drained);
  auto r = callApi(s.socket, "POST", "/v1/drain");
  CHECK(r.status == 202);
  CHECK(s.agent.drained);
  CHECK(callApi(s.socket, "POST", "/v1/metadata").status == 405);
  CHECK(callApi(s.socket, "GET", "/v2/anything").status == 404);
  CHECK(callApi(s.socket, "GET", "/v1/metadata").status == 200);
  struct stat st {};
  REQUIRE(::stat(s.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("api: a request with an Origin header (a web page) is refused on TCP") {
  Server s;
  IntrospectionApi::Request req{boost::beast::http::verb::get, "/v1/tasks", 11};
  req.set(boost::beast::http::field::origin, "http://evil.example");
  CHECK(s.api.handle(req, IntrospectionApi::Channel::Tcp).result() == boost::beast::http::status::forbidden);
  const std::string raw = rawExchange(s.api.port(), "POST /v1/drain HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
                                                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n");
  CHECK(raw.rfind("HTTP/1.1 403", 0) == 0);
  CHECK_FALSE(s.agent.drained);
}

TEST_CASE("api: a second agent does not take over a live API socket") {
  Server s;
  asio::io_context io;
  std::ostringstream logs;
  Logger log{logs};
  FakeAgent other;
  IntrospectionApi second{io.get_executor(), other, log};
  auto taken = second.listenSocket(s.socket);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.error().message.find("another agent answers on it") != std::string::npos);
  CHECK(callApi(s.socket, "GET", "/healthz").status == 200);
}

TEST_CASE("api: DELETE /v1/drain undrains, refused while shutting down") {
  Server s;
  REQUIRE(callApi(s.socket, "POST", "/v1/drain").status == 202);
  REQUIRE(s.agent.drained);
  auto r = callApi(s.socket, "DELETE", "/v1/drain");
  CHECK(r.status == 202);
  CHECK(r.body.find("\"draining\":false") != std::string::npos);
  CHECK_FALSE(s.agent.drained);
  s.agent.shuttingDown = true;
  auto refused = callApi(s.socket, "DELETE", "/v1/drain");
  CHECK(refused.status == 409);
  CHECK(refused.body.find("shutting down") != std::string::npos);
}

TEST_CASE("api: metadata reports orphans, the runtime and source problems") {
  Server s;
  auto m = json::parse(callApi(s.listen, "GET", "/v1/metadata").body);
  REQUIRE(m["orphans"].size() == 1);
  CHECK(m["orphans"][0]["instance"] == "i-0");
  CHECK(m["orphans"][0]["name"] == "daemonlet-task-old-main-0123456789ab");
  CHECK(m["runtime"] == "docker 20.10.24");
  CHECK(m["sourceProblems"].is_array());
  const std::string metrics = callApi(s.listen, "GET", "/metrics").body;
  CHECK(metrics.find("daemonlet_orphan_containers 1\n") != std::string::npos);
  CHECK(metrics.find("daemonlet_source_problems 0\n") != std::string::npos);
  CHECK(metrics.find("daemonlet_internal_errors_total 0\n") != std::string::npos);
}

TEST_CASE("api: garbage gets a 400 and the server carries on") {
  Server s;
  const std::string answer = rawExchange(s.api.port(), "THIS IS NOT HTTP\r\n\r\n");
  CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
  const std::string huge = rawExchange(s.api.port(), "POST /v1/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
  CHECK(huge.rfind("HTTP/1.1 400", 0) == 0);  // over the body limit
  CHECK(callApi(s.listen, "GET", "/healthz").status == 200);
  CHECK_FALSE(s.agent.drained);
}

TEST_CASE("api: a client holding its connection open blocks nobody") {
  Server s;
  asio::io_context io;
  asio::ip::tcp::socket idle(io);
  idle.connect({asio::ip::make_address("127.0.0.1"), s.api.port()});
  asio::write(idle, asio::buffer(std::string("GET /v1/metadata HTTP/1.1\r\nHo")));  // and then nothing
  const auto before = std::chrono::steady_clock::now();
  CHECK(callApi(s.listen, "GET", "/v1/daemons").status == 200);
  CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(5));
}

TEST_CASE("api: listen addresses") {
  asio::io_context io;
  std::ostringstream logs;
  Logger log(logs);
  FakeAgent agent;
  IntrospectionApi api(io.get_executor(), agent, log);
  auto refused = api.listen("0.0.0.0:0", false);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("listenAllowNonLoopback") != std::string::npos);
  CHECK_FALSE(parseListenAddress("localhost"));
  CHECK_FALSE(parseListenAddress("example.com:80"));
  CHECK(parseListenAddress("localhost:51680")->port() == 51680);
  CHECK(parseListenAddress("[::1]:9")->address().is_loopback());
}
