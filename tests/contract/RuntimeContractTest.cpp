// The runtime contract: what every adapter must do, checked against a real engine.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support/Async.h"
#include "support/RuntimeUnderTest.h"

using namespace daemonlet;
using namespace daemonlet::runtime;
using namespace std::chrono_literals;

namespace {

// One engine connection per test, and every container it made removed afterwards.
struct Engine {
  asio::io_context io;
  RuntimePtr rt = test::makeRuntimeUnderTest(io.get_executor(), test::runtimeUnderTestEndpoint());
  std::string runId = fmt::format("{}-{}", getpid(), counter()++);
  LabelSelector mine{{"io.daemonlet.test", runId}};

  static std::atomic<int>& counter() {
    static std::atomic<int> n{0};
    return n;
  }

  Engine() {
    auto image = await(rt->ensureImage(test::kTestImage));
    if (!image) FAIL("test image missing (run packaging/dev-setup.sh setup): " << image.error().message);
  }
  ~Engine() {
    rt->stopWatching();
    auto left = test::runAsync(io, rt->list(mine));
    if (left) {
      for (const auto& c : left.value()) test::runAsync(io, rt->remove(c.id));
    }
  }

  template <class T>
  T await(asio::awaitable<T> work) { return test::runAsync(io, std::move(work)); }

  ContainerSpec spec(const std::string& name, std::vector<std::string> command) {
    ContainerSpec s;
    s.name = fmt::format("dltest-{}-{}", runId, name);
    s.image = test::kTestImage;
    s.command = std::move(command);
    s.labels = mine;
    s.networkMode = "none";
    return s;
  }

  std::string run(ContainerSpec s) {
    auto id = await(rt->create(std::move(s)));
    REQUIRE(id.ok());
    auto started = await(rt->start(id.value()));
    INFO((started.ok() ? "" : started.error().message));
    REQUIRE(started.ok());
    return id.value();
  }

  // Polls inspect until `done` holds; returns the last state seen.
  template <class Predicate>
  ContainerInfo waitFor(const std::string& id, Predicate done, std::chrono::seconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto info = await(rt->inspect(id));
      REQUIRE(info.ok());
      if (done(info.value()) || std::chrono::steady_clock::now() > deadline) return info.value();
      test::pumpUntil(io, [] { return false; }, 100ms);
    }
  }
};

bool exited(const ContainerInfo& c) { return c.state == ContainerState::Exited || c.state == ContainerState::Dead; }

}  // namespace

TEST_CASE("contract: the engine answers with a supported API version") {
  Engine e;
  auto v = e.await(e.rt->version());
  REQUIRE(v.ok());
  CHECK_FALSE(v->version.empty());
  CHECK(v->apiVersion >= std::string("1.40"));
}

TEST_CASE("contract: create, start, inspect, stop, remove") {
  Engine e;
  auto spec = e.spec("life", {"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"});
  spec.env = {"GREETING=hello"};
  spec.labels["io.daemonlet.family"] = "life";
  auto id = e.await(e.rt->create(spec));
  REQUIRE(id.ok());

  auto created = e.await(e.rt->inspect(id.value()));
  REQUIRE(created.ok());
  CHECK(created->state == ContainerState::Created);
  CHECK(created->name == spec.name);
  CHECK(created->labels.at("io.daemonlet.family") == "life");
  CHECK_FALSE(created->startedAt);

  REQUIRE(e.await(e.rt->start(id.value())).ok());
  auto running = e.await(e.rt->inspect(id.value()));
  CHECK(running->state == ContainerState::Running);
  REQUIRE(running->startedAt);
  CHECK(running->running());
  CHECK(e.await(e.rt->start(id.value())).ok());  // starting a running container is fine

  auto stopped = e.await(e.rt->stop(id.value(), 10s));
  INFO((stopped.ok() ? "" : stopped.error().message));
  REQUIRE(stopped.ok());
  auto after = e.await(e.rt->inspect(id.value()));
  CHECK(after->state == ContainerState::Exited);
  CHECK(after->exitCode == 0);  // the trap ran: SIGTERM came first
  REQUIRE(after->finishedAt);
  CHECK(*after->finishedAt >= *running->startedAt);
  CHECK(e.await(e.rt->stop(id.value(), 1s)).ok());  // stopping a stopped one too

  REQUIRE(e.await(e.rt->remove(id.value())).ok());
  auto gone = e.await(e.rt->inspect(id.value()));
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code == Error::Code::NotFound);
  CHECK(e.await(e.rt->remove(id.value())).ok());  // already gone: still what the caller wanted
}

TEST_CASE("contract: exit codes are reported") {
  Engine e;
  const std::string id = e.run(e.spec("exit3", {"sh", "-c", "exit 3"}));
  auto info = e.waitFor(id, exited);
  CHECK(exited(info));
  CHECK(info.exitCode == 3);
  CHECK_FALSE(info.oomKilled);
}

TEST_CASE("contract: stop sends SIGTERM, then SIGKILL after the timeout") {
  Engine e;
  const std::string id = e.run(e.spec("stubborn", {"sh", "-c", "trap '' TERM; while true; do sleep 1; done"}));
  const auto before = std::chrono::steady_clock::now();
  REQUIRE(e.await(e.rt->stop(id, 1s)).ok());
  const auto took = std::chrono::steady_clock::now() - before;
  auto info = e.await(e.rt->inspect(id));
  CHECK(info->state == ContainerState::Exited);
  CHECK(info->exitCode == 137);  // 128 + SIGKILL
  CHECK(took >= 1s);             // it was given its grace period
}

// The agent's way out (agent/cli/RunCommand.cpp): the loop stops, the runtime is closed, and
// the loop's pending work is discarded while the agent is alive. A call that had not
// answered yet must end in that discard, not later inside the loop's destructor, when its
// coroutine's locals would refer to an agent (and a call limiter) already gone: on
// containerd, whose calls wait on worker threads, ASan found exactly that.
TEST_CASE("contract: a call under way when the loop stops ends once close() has run and the loop's work is discarded") {
  Engine e;
  const std::string id = e.run(e.spec("stubborn", {"sh", "-c", "trap '' TERM; while true; do sleep 1; done"}));
  struct DiscardableLoop : asio::io_context {
    using asio::io_context::shutdown;
  };
  struct Witness {
    bool& ended;
    ~Witness() { ended = true; }
  };
  bool ended = false;
  DiscardableLoop io;
  RuntimePtr rt = test::makeRuntimeUnderTest(io.get_executor(), test::runtimeUnderTestEndpoint());
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    Witness witness{ended};
    co_await rt->stop(id, 2s);  // SIGTERM is ignored: the engine answers after 2 s
  }, asio::detached);
  io.run_for(300ms);
  REQUIRE_FALSE(ended);  // still waiting for the engine
  rt->close();
  io.shutdown();
  CHECK(ended);
}

TEST_CASE("contract: kill delivers a signal") {
  Engine e;
  const std::string id = e.run(e.spec("killme", {"sh", "-c", "trap 'exit 42' USR1; while true; do sleep 1 & wait; done"}));
  e.waitFor(id, [](const ContainerInfo& c) { return c.running(); });
  test::pumpUntil(e.io, [] { return false; }, 300ms);  // let the shell install its trap
  REQUIRE(e.await(e.rt->kill(id, SIGUSR1)).ok());
  auto info = e.waitFor(id, exited);
  CHECK(info.exitCode == 42);
  auto again = e.await(e.rt->kill(id, SIGKILL));
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == Error::Code::Conflict);  // not running
}

TEST_CASE("contract: resource limits are applied and visible inside the container") {
  Engine e;
  // cgroup v1 and v2 name the files differently; the container checks whichever exists.
  const std::string check =
      "m=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max); "
      "[ \"$m\" = 67108864 ] || exit 10; "
      "s=$(cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu,cpuacct/cpu.shares 2>/dev/null || echo v2); "
      "[ \"$s\" = 512 ] || [ \"$s\" = v2 ] || exit 11; exit 0";
  auto spec = e.spec("limits", {"sh", "-c", check});
  spec.memoryBytes = 64 * 1024 * 1024;
  spec.memoryReservationBytes = 32 * 1024 * 1024;
  spec.cpuShares = 512;
  spec.nanoCpus = 500'000'000;
  const std::string id = e.run(spec);
  auto info = e.waitFor(id, exited);
  CHECK(info.memoryBytes == 64 * 1024 * 1024);
  CHECK(info.cpuShares == 512);
  CHECK(info.nanoCpus == 500'000'000);
  CHECK(info.exitCode == 0);  // 10: memory limit not seen inside; 11: cpu shares not seen
}

TEST_CASE("contract: labels select containers") {
  Engine e;
  auto a = e.spec("a", {"true"});
  a.labels["role"] = "metrics";
  auto b = e.spec("b", {"true"});
  b.labels["role"] = "logs";
  auto idA = e.await(e.rt->create(a));
  auto idB = e.await(e.rt->create(b));
  REQUIRE(idA.ok());
  REQUIRE(idB.ok());

  auto all = e.await(e.rt->list(e.mine));
  REQUIRE(all.ok());
  CHECK(all->size() == 2);
  auto selector = e.mine;
  selector["role"] = "metrics";
  auto some = e.await(e.rt->list(selector));
  REQUIRE(some.ok());
  REQUIRE(some->size() == 1);
  CHECK(some->front().id == idA.value());
  CHECK(some->front().labels.at("role") == "metrics");
  CHECK(some->front().state == ContainerState::Created);  // not running ones are listed too
}

TEST_CASE("contract: an OOM kill is reported") {
  Engine e;
  std::vector<RuntimeEvent> events;
  e.rt->watch(e.mine, {[&](const RuntimeEvent& ev) { events.push_back(ev); }, nullptr, nullptr});
  auto spec = e.spec("oom", {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"});
  spec.memoryBytes = 16 * 1024 * 1024;
  const std::string id = e.run(spec);
  auto info = e.waitFor(id, exited);
  CHECK(info.oomKilled);
  CHECK(info.exitCode == 137);
  CHECK(test::pumpUntil(e.io, [&] {
    return std::any_of(events.begin(), events.end(), [&](const RuntimeEvent& ev) { return ev.containerId == id && ev.kind == RuntimeEvent::Kind::Oom; });
  }, 10s));
}

TEST_CASE("contract: health checks go healthy, then unhealthy") {
  Engine e;
  std::vector<Health> seen;
  std::string id;
  e.rt->watch(e.mine, {[&](const RuntimeEvent& ev) {
                         if (ev.containerId == id && ev.kind == RuntimeEvent::Kind::HealthChanged) seen.push_back(ev.health);
                       }, nullptr, nullptr});
  auto spec = e.spec("health", {"sh", "-c", "touch /tmp/ok; sleep 4; rm /tmp/ok; while true; do sleep 1; done"});
  spec.healthCheck = HealthCheckSpec{{"CMD-SHELL", "test -f /tmp/ok"}, 500ms, 1000ms, 0ms, 1};
  id = e.run(spec);
  auto healthy = e.waitFor(id, [](const ContainerInfo& c) { return c.health == Health::Healthy; });
  CHECK(healthy.health == Health::Healthy);
  auto unhealthy = e.waitFor(id, [](const ContainerInfo& c) { return c.health == Health::Unhealthy; });
  CHECK(unhealthy.health == Health::Unhealthy);
  CHECK(test::pumpUntil(e.io, [&] { return seen.size() >= 2; }, 5s));
  REQUIRE(seen.size() >= 2);
  CHECK(seen[0] == Health::Healthy);
  CHECK(seen.back() == Health::Unhealthy);
  REQUIRE(e.await(e.rt->stop(id, 1s)).ok());
}

TEST_CASE("contract: start and exit events are delivered with the exit code and labels") {
  Engine e;
  std::vector<RuntimeEvent> events;
  int resyncs = 0;
  e.rt->watch(e.mine, {[&](const RuntimeEvent& ev) { events.push_back(ev); }, [&](const std::vector<ContainerInfo>&) { ++resyncs; }, nullptr});
  REQUIRE(test::pumpUntil(e.io, [&] { return resyncs > 0; }, 10s));  // subscribed, snapshot taken
  auto spec = e.spec("short", {"sh", "-c", "sleep 0.3; exit 7"});
  spec.labels["io.daemonlet.family"] = "short";
  const std::string id = e.run(spec);
  auto hasExit = [&] {
    return std::any_of(events.begin(), events.end(), [&](const RuntimeEvent& ev) { return ev.containerId == id && ev.kind == RuntimeEvent::Kind::Exit; });
  };
  REQUIRE(test::pumpUntil(e.io, hasExit, 10s));
  bool sawStart = false;
  for (const auto& ev : events) {
    if (ev.containerId != id) continue;
    CHECK(ev.labels.at("io.daemonlet.family") == "short");
    CHECK_FALSE(ev.labels.count("exitCode"));  // engine attributes are not labels
    if (ev.kind == RuntimeEvent::Kind::Start) sawStart = true;
    if (ev.kind == RuntimeEvent::Kind::Exit) CHECK(ev.exitCode == 7);
  }
  CHECK(sawStart);
}

TEST_CASE("contract: failures come back as clear errors") {
  Engine e;
  SECTION("no such container") {
    auto r = e.await(e.rt->inspect("dltest-no-such-container"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::NotFound);
    CHECK(r.error().message.find("dltest-no-such-container") != std::string::npos);
  }
  SECTION("name already in use") {
    auto spec = e.spec("twice", {"true"});
    REQUIRE(e.await(e.rt->create(spec)).ok());
    auto r = e.await(e.rt->create(spec));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::Conflict);
    CHECK(r.error().message.find(spec.name) != std::string::npos);
  }
  SECTION("an image that is nowhere") {
    auto r = e.await(e.rt->ensureImage("daemonlet/no-such-image:1"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::NotFound);
    CHECK(r.error().message.find("daemonlet/no-such-image:1") != std::string::npos);
    auto spec = e.spec("noimage", {"true"});
    spec.image = "daemonlet/no-such-image:1";
    auto created = e.await(e.rt->create(spec));
    REQUIRE_FALSE(created.ok());
    CHECK(created.error().code == Error::Code::NotFound);
    CHECK(created.error().message.find("daemonlet/no-such-image:1") != std::string::npos);
  }
  SECTION("the engine is not there") {
    auto absent = test::makeRuntimeUnderTest(e.io.get_executor(), "unix:///tmp/daemonlet-no-engine.sock");
    auto r = e.await(absent->version());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::Unavailable);
    CHECK(r.error().message.find("/tmp/daemonlet-no-engine.sock") != std::string::npos);
  }
  SECTION("a bad request carries the engine's own message") {
    auto spec = e.spec("badmem", {"true"});
    spec.memoryBytes = 1024;  // below the engine's minimum
    auto r = e.await(e.rt->create(spec));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::Engine);
    CHECK(r.error().message.find("emory") != std::string::npos);
  }
}

// [docker]: named volumes and log drivers are not built on containerd yet (issue 12).
TEST_CASE("contract: named volumes are created with their driver options and labels, used, and removed", "[docker]") {
  Engine e;
  VolumeSpec v;
  v.name = fmt::format("dltest-{}-vol", e.runId);
  v.driver = "local";
  v.driverOpts = {{"type", "tmpfs"}, {"device", "tmpfs"}, {"o", "size=4m"}};
  v.labels = {{"io.daemonlet.test", e.runId}, {"team", "data"}};
  auto created = e.await(e.rt->createVolume(v));
  INFO((created.ok() ? "" : created.error().message));
  REQUIRE(created.ok());
  CHECK(created->name == v.name);
  auto again = e.await(e.rt->createVolume(v));  // creating it twice returns the same volume
  REQUIRE(again.ok());

  auto inspected = e.await(e.rt->inspectVolume(v.name));
  REQUIRE(inspected.ok());
  CHECK(inspected->driver == "local");
  CHECK(inspected->options.at("type") == "tmpfs");
  CHECK(inspected->labels.at("team") == "data");
  auto listed = e.await(e.rt->listVolumes({{"io.daemonlet.test", e.runId}}));
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().name == v.name);

  // The driver options reach the mount: a 4 MiB tmpfs.
  auto spec = e.spec("volume-user", {"sh", "-c", "df -k /data | tail -1; sleep 30"});
  spec.mounts.push_back({Mount::Type::Volume, v.name, "/data", false, 0, {}});
  const std::string id = e.run(spec);
  auto removeInUse = e.await(e.rt->removeVolume(v.name));
  REQUIRE_FALSE(removeInUse.ok());
  CHECK(removeInUse.error().code == Error::Code::Conflict);
  CHECK(removeInUse.error().message.find(v.name) != std::string::npos);

  REQUIRE(e.await(e.rt->remove(id)).ok());
  REQUIRE(e.await(e.rt->removeVolume(v.name)).ok());
  auto gone = e.await(e.rt->inspectVolume(v.name));
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code == Error::Code::NotFound);
  CHECK(e.await(e.rt->removeVolume(v.name)).ok());  // already gone
}

TEST_CASE("contract: the engine names the log drivers it can use", "[docker]") {
  Engine e;
  auto drivers = e.await(e.rt->logDrivers());
  REQUIRE(drivers.ok());
  CHECK(std::find(drivers->begin(), drivers->end(), "json-file") != drivers->end());
  CHECK(std::find(drivers->begin(), drivers->end(), "awsfirelens") == drivers->end());  // ECS's own, no engine's
}
