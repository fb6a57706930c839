// The event stream survives the engine going away: reconnect, then a resync that shows
// a container which died while nobody was listening. Uses a private dockerd so that the
// machine's own engine is never restarted.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "runtime/docker/DockerRuntime.h"
#include "support/Async.h"
#include "support/RuntimeUnderTest.h"

using namespace daemonlet;
using namespace daemonlet::runtime;
using namespace std::chrono_literals;

namespace {

int sh(const std::string& command) { return std::system(command.c_str()); }

struct PrivateDockerd {
  std::string dir = fmt::format("/tmp/dl-dockerd-{}", getpid());
  std::string script = DAEMONLET_TESTS_DIR "/contract/private-dockerd.sh";
  PrivateDockerd() { REQUIRE(sh(script + " start " + dir) == 0); }
  ~PrivateDockerd() { sh(script + " stop " + dir); }
  std::string endpoint() const { return "unix://" + dir + "/docker.sock"; }
};

}  // namespace

TEST_CASE("docker: images load from a tar, and a restart of the engine is followed by a resync", "[docker]") {
  if (test::runtimeUnderTestName() != "docker") return;  // docker-specific harness
  PrivateDockerd engine;
  const std::string tar = engine.dir + "/busybox.tar";
  REQUIRE(sh(fmt::format("docker save -o {} {}", tar, test::kTestImage)) == 0);

  asio::io_context io;
  DockerRuntime::Options options;
  options.reconnectInitial = 100ms;
  options.reconnectMax = 500ms;
  DockerRuntime rt(io.get_executor(), engine.endpoint(), options);
  auto loaded = test::runAsync(io, rt.loadImage(tar));
  INFO((loaded.ok() ? "" : loaded.error().message));
  REQUIRE(loaded.ok());
  REQUIRE(test::runAsync(io, rt.ensureImage(test::kTestImage)).ok());
  auto broken = test::runAsync(io, rt.loadImage(engine.dir + "/dockerd.log"));  // not a tar
  CHECK_FALSE(broken.ok());

  const LabelSelector mine{{"io.daemonlet.test", "restart"}};
  ContainerSpec spec;
  spec.name = "dltest-restart";
  spec.image = test::kTestImage;
  spec.command = {"sleep", "1000"};
  spec.labels = mine;
  spec.networkMode = "none";
  auto id = test::runAsync(io, rt.create(spec));
  REQUIRE(id.ok());
  REQUIRE(test::runAsync(io, rt.start(id.value())).ok());
  auto pid = test::runAsync(io, rt.inspect(id.value()));
  REQUIRE(pid.ok());

  std::vector<std::vector<ContainerInfo>> resyncs;
  int disconnects = 0;
  rt.watch(mine, {nullptr, [&](const std::vector<ContainerInfo>& s) { resyncs.push_back(s); }, [&](const Error&) { ++disconnects; }});
  REQUIRE(test::pumpUntil(io, [&] { return resyncs.size() == 1; }, 10s));
  REQUIRE(resyncs[0].size() == 1);
  CHECK(resyncs[0][0].running());

  // The engine dies; the container's process dies while nobody listens.
  const std::string shimPid = fmt::format("$(curl -s --unix-socket {}/docker.sock http://localhost/containers/{}/json | sed -n 's/.*\"Pid\":\\([0-9]*\\).*/\\1/p')", engine.dir, id.value());
  const std::string processPid = fmt::format("{}", shimPid);
  REQUIRE(sh(fmt::format("p={}; {} kill9 {} && kill -9 $p", processPid, engine.script, engine.dir)) == 0);
  REQUIRE(test::pumpUntil(io, [&] { return disconnects > 0; }, 10s));
  test::pumpUntil(io, [] { return false; }, 1s);  // reconnects fail meanwhile, with backoff

  REQUIRE(sh(engine.script + " start " + engine.dir) == 0);
  REQUIRE(test::pumpUntil(io, [&] { return resyncs.size() >= 2; }, 30s));
  const auto& after = resyncs.back();
  REQUIRE(after.size() == 1);
  CHECK(after[0].id == id.value());
  CHECK_FALSE(after[0].running());
  rt.stopWatching();
}
