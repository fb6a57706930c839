// The control endpoint client against a real HTTP server (tests/control/control_server.py):
// registration, long poll, validation, every injected fault, reports, tokens and TLS.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "agent/source/ControlEndpointSource.h"
#include "support/Async.h"
#include "support/ControlServerProcess.h"
#include "support/TempDir.h"

using namespace daemonlet;
using namespace daemonlet::test;
using namespace std::chrono_literals;
using agent::ControlEndpointSource;
using agent::VersionedDesiredState;

namespace {

std::string desiredDoc(int generation, const std::string& memory = "32", const char* status = "ACTIVE") {
  return fmt::format(R"({{"generation": {}, "instanceStatus": "{}",
  "daemons": [{{"family": "node-monitor", "revision": {},
    "containerDefinitions": [{{"name": "main", "image": "busybox", "memory": {}}}]}}],
  "tasks": [{{"id": "web-1", "definition": {{"family": "web", "containerDefinitions": [{{"name": "main", "image": "busybox", "memory": 64}}]}}}}]}})",
                     generation, status, generation, memory);
}

// One agent-side client on its own io_context, recording what it delivers.
struct Client {
  asio::io_context io;
  std::ostringstream logs;
  agent::Logger log{logs};
  std::vector<VersionedDesiredState> delivered;
  std::unique_ptr<ControlEndpointSource> source;

  explicit Client(ControlEndpointSource::Settings settings) {
    ControlEndpointSource::Registration registration{"spot-pool", {{"zone", "eu-west-1a"}}, "0.1.0-test", {2048, 3840}};
    source = std::make_unique<ControlEndpointSource>(io.get_executor(), std::move(settings), std::move(registration), log);
  }
  void start(std::optional<VersionedDesiredState> lastGood = std::nullopt) {
    source->start([this](agent::DesiredStateSource::Shared s) { delivered.push_back(*s); }, std::move(lastGood));
  }
  std::int64_t generation() const { return delivered.empty() ? -1 : delivered.back().state.generation; }
  bool waitForGeneration(std::int64_t g, std::chrono::milliseconds limit = 10s) {
    return pumpUntil(io, [&] { return generation() == g; }, limit);
  }
  void pumpFor(std::chrono::milliseconds d) {
    pumpUntil(io, [] { return false; }, d);
  }
  bool logged(const std::string& text) const { return logs.str().find(text) != std::string::npos; }
};

ControlEndpointSource::Settings settingsFor(const std::string& url) {
  ControlEndpointSource::Settings s;
  s.baseUrl = url;
  s.cluster = "default";
  s.instanceId = "i-1";
  s.longPoll = 30s;
  s.requestGrace = 2s;
  return s;
}

// A test server serving generation 1, and a client that has fetched it.
struct Connected {
  TempDir dir;
  ControlServerProcess server{dir.path};
  std::string etag1 = server.setDesired(desiredDoc(1));
  Client client;

  explicit Connected(const std::function<void(ControlEndpointSource::Settings&)>& adjust = {})
      : client(adjusted(settingsFor(server.url()), adjust)) {
    client.start();
    REQUIRE(client.waitForGeneration(1));
  }
  static ControlEndpointSource::Settings adjusted(ControlEndpointSource::Settings s,
                                                  const std::function<void(ControlEndpointSource::Settings&)>& adjust) {
    if (adjust) adjust(s);
    return s;
  }
};

// tests/control/make-test-pki.sh: a CA, a server certificate for 127.0.0.1 and a client
// certificate signed by it, and an unrelated CA; made anew for each run.
struct Pki {
  explicit Pki(const std::filesystem::path& d) : dir(d / "pki") {
    const std::string command = fmt::format("{}/control/make-test-pki.sh {}", DAEMONLET_TESTS_DIR, dir.string());
    if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
  }
  std::string file(const char* name) const { return (dir / name).string(); }
  std::filesystem::path dir;
};

}  // namespace

TEST_CASE("control: registers its capacity, then long-polls and gets each change without waiting out the poll") {
  Connected t;
  auto& server = t.server;
  auto& client = t.client;
  CHECK(client.delivered.back().etag == t.etag1);
  CHECK(client.delivered.back().state.daemons.at(0).family == "node-monitor");
  const auto reg = server.state()["registrations"]["default/i-1"];
  CHECK(reg["capacity"] == nlohmann::json({{"cpu", 2048}, {"memory", 3840}}));
  CHECK(reg["capacityProvider"] == "spot-pool");
  CHECK(reg["attributes"]["zone"] == "eu-west-1a");
  CHECK(reg["agentVersion"] == "0.1.0-test");

  // The poll waits 30 s; a change on the server answers it at once.
  client.pumpFor(300ms);
  const std::string etag2 = server.setDesired(desiredDoc(2));
  REQUIRE(client.waitForGeneration(2, 10s));
  CHECK(client.delivered.back().etag == etag2);
  CHECK(client.delivered.size() == 2);
  CHECK(client.source->errors() == 0);
}

TEST_CASE("control: a 304 after the wait keeps the state and polls again with the same ETag") {
  Connected t([](ControlEndpointSource::Settings& s) { s.longPoll = 1s; });
  auto& server = t.server;
  auto& client = t.client;
  REQUIRE(pumpUntil(client.io, [&] { return server.state()["answers"].value("desired 304", 0) >= 2; }, 10s));
  CHECK(client.delivered.size() == 1);
  CHECK(client.source->errors() == 0);
}

TEST_CASE("control: a desired state that fails validation is rejected whole, naming the field, the last good one stays") {
  Connected t;
  auto& server = t.server;
  auto& client = t.client;
  server.setDesired(desiredDoc(2, "\"lots\""));
  REQUIRE(pumpUntil(client.io, [&] { return client.logged("rejected as a whole"); }, 10s));
  CHECK(client.logged("daemons[0].containerDefinitions[0].memory"));
  CHECK(client.logged("still running generation 1"));
  CHECK(client.generation() == 1);
  // The rejected ETag is what the next poll asks about: no hammering with the same bad
  // document, and the fix arrives as soon as it is published.
  client.pumpFor(1500ms);
  CHECK(server.state()["requests"]["desired"].get<int>() <= 4);
  server.setDesired(desiredDoc(3));
  REQUIRE(client.waitForGeneration(3));
  CHECK(client.delivered.size() == 2);
}

TEST_CASE("control: every injected fault is logged, backed off, and recovered from, the last good state stays") {
  // A 2 s poll with 2 s of grace: "slow" (5 s) times out.
  Connected t([](ControlEndpointSource::Settings& s) { s.longPoll = 2s; });
  auto& server = t.server;
  auto& client = t.client;
  const std::pair<const char*, const char*> faults[] = {
      {"500", "HTTP 500: {\"error\": \"internal error (injected)\"}"},
      {"429", "HTTP 429 Too Many Requests (Retry-After: 1)"},
      {"garbage", "response rejected as a whole"},
      {"wrongtype", "Content-Type is 'text/html', not application/json"},
      {"oversized", "response body larger than 8 MiB refused"},
      {"401", "REFUSED CREDENTIALS"},
      {"403", "answered HTTP 403 Forbidden"},
      {"slow", "timed out"},
      {"down", "cannot connect"},
  };
  int generation = 1;
  for (const auto& [mode, expected] : faults) {
    INFO("fault " << mode);
    const auto errorsBefore = client.source->errors();
    server.fault(mode, 1, 5);
    ++generation;
    if (std::string(mode) != "down") server.setDesired(desiredDoc(generation));
    REQUIRE(pumpUntil(client.io, [&] { return client.logged(expected); }, 15s));
    client.pumpFor(2s);
    CHECK(client.source->errors() > errorsBefore);
    CHECK(client.generation() == generation - 1);  // nothing new ran during the fault
    server.fault("none");
    if (std::string(mode) == "down") server.setDesired(desiredDoc(generation));
    REQUIRE(client.waitForGeneration(generation, 20s));
    CHECK(client.logged("control endpoint: back after"));
  }
}

TEST_CASE("control: backoff grows and 429 Retry-After is honoured: no busy loop") {
  Connected t;
  auto& server = t.server;
  auto& client = t.client;
  server.fault("500");
  server.setDesired(desiredDoc(2));
  const auto answered = [&](const char* key) { return server.state()["answers"].value(key, 0); };
  // Waits of 125-250 ms, doubling: the sixth attempt comes 3.9 s after the first at the
  // earliest, never within a busy loop's milliseconds.
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(pumpUntil(client.io, [&] { return answered("desired 500") >= 6; }, 20s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 3800ms);
  CHECK(answered("desired 500") <= 7);

  // The first 429 comes when the wait after the sixth failure (4-8 s) ends. After it the
  // backoff alone would be 8-16 s, longer than the window below: the client must wait
  // Retry-After (3 s) instead.
  server.fault("429", 3);
  REQUIRE(pumpUntil(client.io, [&] { return answered("desired 429") >= 1; }, 25s));
  const int first = answered("desired 429");
  client.pumpFor(7s);
  const int failed429 = answered("desired 429") - first;
  CHECK(failed429 >= 1);  // at 3 s and 6 s
  CHECK(failed429 <= 3);  // and never sooner than Retry-After
  server.fault("none");
  REQUIRE(client.waitForGeneration(2, 15s));
}

TEST_CASE("control: status reports are coalesced to one a second, the newest wins, and a heartbeat repeats it") {
  Connected t([](ControlEndpointSource::Settings& s) { s.heartbeat = 2s; });
  auto& server = t.server;
  auto& client = t.client;
  int renders = 0;
  for (int i = 0; i < 30; ++i) {
    client.source->publish([&renders, i] {
      ++renders;
      return nlohmann::json{{"phase", "ACTIVE"}, {"seq", i}};
    });
    client.pumpFor(50ms);
  }
  client.pumpFor(1500ms);
  auto s = server.state();
  CHECK(s["status"]["default/i-1"]["seq"] == 29);  // the newest arrived
  const int sent = s["statusCount"]["default/i-1"].get<int>();
  CHECK(sent <= 4);  // 30 changes over 1.5 s, at most one report a second
  CHECK(renders <= 4);  // rendered when sent, not on each of the 30 changes
  client.pumpFor(4500ms);
  const int afterIdle = server.state()["statusCount"]["default/i-1"].get<int>();
  CHECK(afterIdle >= sent + 2);  // heartbeats while nothing changes
}

TEST_CASE("control: a report that failed is retried, newest first, once the endpoint is back") {
  Connected t;
  auto& server = t.server;
  auto& client = t.client;
  server.fault("500");
  client.source->publish([] { return nlohmann::json{{"phase", "ACTIVE"}, {"seq", 1}}; });
  client.pumpFor(1500ms);
  client.source->publish([] { return nlohmann::json{{"phase", "DRAINING"}, {"seq", 2}}; });
  client.pumpFor(1000ms);
  CHECK(client.logged("/status: HTTP 500"));
  server.fault("none");
  REQUIRE(pumpUntil(client.io, [&] { return server.state()["status"].value("default/i-1", nlohmann::json::object()).value("seq", 0) == 2; }, 15s));
}

TEST_CASE("control: an endpoint that forgot the instance (404) gets it registered again") {
  TempDir dir;
  auto server = std::make_unique<ControlServerProcess>(dir.path);
  const int port = server->port();
  server->setDesired(desiredDoc(1));
  Client client(settingsFor(server->url()));
  client.start();
  REQUIRE(client.waitForGeneration(1));
  server.reset();  // the control plane restarts and loses its registrations
  server = std::make_unique<ControlServerProcess>(dir.path, std::vector<std::string>{}, port);
  server->setDesired(desiredDoc(2));
  REQUIRE(client.waitForGeneration(2, 20s));
  CHECK(server->state()["registrations"].contains("default/i-1"));
  CHECK(server->state()["answers"].value("desired 404", 0) >= 1);
  CHECK(client.logged("not registered; registering again"));
}

TEST_CASE("control: the bearer token comes from tokenFile, is re-read when it changes, and never appears in the log") {
  TempDir dir;
  dir.write("server-token", "s3cret-one\n");
  dir.write("agent-token", "s3cret-one\n");
  ControlServerProcess server(dir.path, {"--token-file", (dir.path / "server-token").string()});
  server.setDesired(desiredDoc(1));
  auto settings = settingsFor(server.url());
  settings.tokenFile = (dir.path / "agent-token").string();
  Client client(settings);
  client.start();
  REQUIRE(client.waitForGeneration(1));

  // Rotated on the server first: refused, loudly, until the agent's file follows.
  dir.write("server-token", "s3cret-two\n");
  server.setDesired(desiredDoc(2));
  REQUIRE(pumpUntil(client.io, [&] { return client.logged("REFUSED CREDENTIALS"); }, 15s));
  CHECK(client.logged("source.tokenFile " + settings.tokenFile));
  CHECK(client.generation() == 1);
  dir.write("agent-token", "s3cret-two\n");
  REQUIRE(client.waitForGeneration(2, 20s));
  CHECK_FALSE(client.logged("s3cret"));

  // A token file that disappears: no request without it, a clear line, and recovery.
  std::filesystem::remove(dir.path / "agent-token");
  server.setDesired(desiredDoc(3));
  REQUIRE(pumpUntil(client.io, [&] { return client.logged("No such file or directory; no request sent"); }, 80s));
  dir.write("agent-token", "s3cret-two");
  REQUIRE(client.waitForGeneration(3, 20s));
}

TEST_CASE("control: TLS verifies the server against caFile, fails closed on the wrong CA, and presents a client certificate") {
  TempDir dir;
  Pki pki(dir.path);
  ControlServerProcess server(dir.path, {"--tls-cert", pki.file("server.pem"), "--tls-key", pki.file("server.key")});
  server.setDesired(desiredDoc(1));

  SECTION("the right CA") {
    auto settings = settingsFor(server.url("https"));
    settings.tls.caFile = pki.file("ca.pem");
    Client client(settings);
    client.start();
    REQUIRE(client.waitForGeneration(1));
  }
  SECTION("a wrong CA: nothing is fetched, the failure names TLS") {
    auto settings = settingsFor(server.url("https"));
    settings.tls.caFile = pki.file("other-ca.pem");
    Client client(settings);
    client.start();
    REQUIRE(pumpUntil(client.io, [&] { return client.logged("TLS failed"); }, 10s));
    client.pumpFor(2s);
    CHECK(client.delivered.empty());
    CHECK(server.state()["registrations"].empty());
  }
  SECTION("the system trust store does not know a private CA") {
    Client client(settingsFor(server.url("https")));
    client.start();
    REQUIRE(pumpUntil(client.io, [&] { return client.logged("TLS failed"); }, 10s));
    CHECK(client.delivered.empty());
  }
}

TEST_CASE("control: mutual TLS: the endpoint accepts the agent only with its client certificate") {
  TempDir dir;
  Pki pki(dir.path);
  ControlServerProcess server(dir.path, {"--tls-cert", pki.file("server.pem"), "--tls-key", pki.file("server.key"), "--client-ca", pki.file("ca.pem")});
  server.setDesired(desiredDoc(1));
  auto settings = settingsFor(server.url("https"));
  settings.tls.caFile = pki.file("ca.pem");
  {
    Client without(settings);
    without.start();
    REQUIRE(pumpUntil(without.io, [&] { return without.source->errors() > 0; }, 10s));
    CHECK(without.delivered.empty());
  }
  settings.tls.clientCertFile = pki.file("client.pem");
  settings.tls.clientKeyFile = pki.file("client.key");
  Client with(settings);
  with.start();
  REQUIRE(with.waitForGeneration(1));
}

TEST_CASE("control: started with the endpoint down, it runs the persisted state and says so") {
  TempDir dir;
  ControlServerProcess server(dir.path);
  server.fault("down");
  Client client(settingsFor(server.url()));
  auto persisted = config::parseDesiredState(desiredDoc(4), "state.json");
  REQUIRE(persisted.ok());
  client.start(VersionedDesiredState{*persisted.value, "\"g4\""});
  REQUIRE(client.waitForGeneration(4, 2s));  // delivered before any answer
  REQUIRE(pumpUntil(client.io, [&] { return client.logged("running the desired state persisted in stateDir/state.json (generation 4)"); }, 10s));
  server.fault("none");
  server.setDesired(desiredDoc(5));
  REQUIRE(client.waitForGeneration(5, 20s));
}

TEST_CASE("control: shutting down cancels a long poll in flight at once") {
  TempDir dir;
  ControlServerProcess server(dir.path);
  server.setDesired(desiredDoc(1));
  auto client = std::make_unique<Client>(settingsFor(server.url()));
  client->start();
  REQUIRE(client->waitForGeneration(1));
  REQUIRE(pumpUntil(client->io, [&] { return server.state()["waiting"] == 1; }, 5s));  // the 30 s poll is held by the server
  const auto started = std::chrono::steady_clock::now();
  client.reset();
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(took < 10s);  // not the 30 s the poll would have lasted
}

TEST_CASE("control: a host name that does not resolve is a DNS failure, retried with backoff") {
  Client client(settingsFor("http://no-such-host.invalid:8080"));
  client.start();
  REQUIRE(pumpUntil(client.io, [&] { return client.logged("DNS lookup failed"); }, 15s));
  client.pumpFor(2s);
  CHECK(client.source->errors() >= 2);
  CHECK(client.source->errors() <= 8);  // backing off, not spinning
  CHECK(client.delivered.empty());
}

TEST_CASE("control: a report that says what the server already has is not sent again") {
  Connected t([](ControlEndpointSource::Settings& s) { s.heartbeat = 60s; });
  auto& server = t.server;
  auto& client = t.client;
  const auto same = [] { return nlohmann::json{{"phase", "ACTIVE"}, {"seq", 1}}; };
  client.source->publish(same);
  REQUIRE(pumpUntil(client.io, [&] { return server.state()["statusCount"].value("default/i-1", 0) == 1; }, 10s));
  for (int i = 0; i < 3; ++i) {
    client.source->publish(same);  // a plan changed, its report did not
    client.pumpFor(1200ms);
  }
  CHECK(server.state()["statusCount"]["default/i-1"] == 1);
  client.source->publish([] { return nlohmann::json{{"phase", "DRAINING"}, {"seq", 2}}; });
  REQUIRE(pumpUntil(client.io, [&] { return server.state()["statusCount"].value("default/i-1", 0) == 2; }, 10s));
}
