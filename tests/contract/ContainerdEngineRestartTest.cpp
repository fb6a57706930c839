// On containerd: an image loaded from a docker-save archive runs, and the event watch
// survives the engine being killed: reconnect, then a resync that shows a container which
// died while nobody was listening. Uses a private containerd (own socket, root, state and
// shims) so that the machine's own engine is never touched.
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "runtime/containerd/ContainerdRuntime.h"
#include "support/Async.h"
#include "support/RuntimeUnderTest.h"

using namespace daemonlet;
using namespace daemonlet::runtime;
using namespace std::chrono_literals;

namespace {

int sh(const std::string& command) { return std::system(command.c_str()); }

struct PrivateContainerd {
  std::string dir = fmt::format("/tmp/dl-containerd-{}", getpid());
  std::string script = DAEMONLET_TESTS_DIR "/contract/private-containerd.sh";
  PrivateContainerd() { REQUIRE(sh(script + " start " + dir) == 0); }
  ~PrivateContainerd() { sh(script + " stop " + dir); }
  std::string socket() const { return dir + "/containerd.sock"; }
};

}  // namespace

TEST_CASE("containerd: images load from a tar, and a restart of the engine is followed by a resync", "[containerd]") {
  if (test::runtimeUnderTestName() != "containerd") return;  // containerd-specific harness
  PrivateContainerd engine;
  const std::string tar = engine.dir + "/busybox.tar";
  REQUIRE(sh(fmt::format("docker save -o {} {}", tar, test::kTestImage)) == 0);

  asio::io_context io;
  ContainerdRuntime::Options options;
  options.reconnectInitial = 100ms;
  options.reconnectMax = 500ms;
  options.logDir = engine.dir + "/logs";
  ContainerdRuntime rt(io.get_executor(), "unix://" + engine.socket(), options);
  auto absent = test::runAsync(io, rt.ensureImage(test::kTestImage));
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.error().code == Error::Code::NotFound);
  auto loaded = test::runAsync(io, rt.loadImage(tar));
  INFO((loaded.ok() ? "" : loaded.error().message));
  REQUIRE(loaded.ok());
  REQUIRE(test::runAsync(io, rt.ensureImage(test::kTestImage)).ok());
  // What we loaded is what containerd's own client sees, unpacked.
  CHECK(sh(fmt::format("ctr --address {} -n daemonlet images ls -q | grep -qx docker.io/{}", engine.socket(), test::kTestImage)) == 0);
  auto broken = test::runAsync(io, rt.loadImage(engine.dir + "/containerd.log"));  // not a tar
  CHECK_FALSE(broken.ok());

  const LabelSelector mine{{"io.daemonlet.test", "restart"}};
  ContainerSpec spec;
  spec.name = "dltest-restart";
  spec.image = test::kTestImage;
  spec.command = {"sh", "-c", "echo started from the loaded image; exec sleep 1000"};
  spec.labels = mine;
  spec.networkMode = "none";
  auto id = test::runAsync(io, rt.create(spec));
  INFO((id.ok() ? "" : id.error().message));
  REQUIRE(id.ok());
  REQUIRE(test::runAsync(io, rt.start(id.value())).ok());
  test::pumpUntil(io, [] { return false; }, 500ms);
  std::ifstream log(rt.logPath(id.value()));
  std::string firstLine;
  std::getline(log, firstLine);
  CHECK(firstLine == "started from the loaded image");  // stdout went to the container's file log

  std::vector<std::vector<ContainerInfo>> resyncs;
  int disconnects = 0;
  rt.watch(mine, {nullptr, [&](const std::vector<ContainerInfo>& s) { resyncs.push_back(s); }, [&](const Error&) { ++disconnects; }});
  REQUIRE(test::pumpUntil(io, [&] { return resyncs.size() == 1; }, 10s));
  REQUIRE(resyncs[0].size() == 1);
  CHECK(resyncs[0][0].running());

  // The engine dies; the container's process dies while nobody listens.
  const std::string pid = fmt::format("$(ctr --address {} -n daemonlet tasks ls | awk '$1==\"{}\" {{print $2}}')", engine.socket(), id.value());
  REQUIRE(sh(fmt::format("p={}; [ -n \"$p\" ] && {} kill9 {} && kill -9 $p", pid, engine.script, engine.dir)) == 0);
  REQUIRE(test::pumpUntil(io, [&] { return disconnects > 0; }, 10s));
  test::pumpUntil(io, [] { return false; }, 1s);  // reconnects fail meanwhile, with backoff

  REQUIRE(sh(engine.script + " start " + engine.dir) == 0);
  REQUIRE(test::pumpUntil(io, [&] { return resyncs.size() >= 2; }, 30s));
  const auto& after = resyncs.back();
  REQUIRE(after.size() == 1);
  CHECK(after[0].id == id.value());
  CHECK_FALSE(after[0].running());
  CHECK(after[0].exitCode == 137);
  rt.stopWatching();
  CHECK(test::runAsync(io, rt.remove(id.value())).ok());
}
