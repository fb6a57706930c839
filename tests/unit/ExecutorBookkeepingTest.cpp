// The executor's bookkeeping when a step throws (issue 10, item 5). The runtime here is a
// stand-in that throws: it proves nothing about an adapter, only that a throwing step is
// logged, counted, backed off and never left "in flight".
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"
#include "agent/EventLoop.h"
#include "agent/Executor.h"
#include "runtime/docker/DockerRuntime.h"
#include "support/Async.h"

#include <unistd.h>

using namespace daemonlet;
using namespace daemonlet::agent;
using namespace std::chrono_literals;

namespace {

class ThrowingRuntime : public runtime::Runtime {
 public:
  asio::awaitable<runtime::Result<runtime::EngineInfo>> version() override { co_return runtime::EngineInfo{"test", "0", "0"}; }
  asio::awaitable<runtime::Status> ensureImage(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Status> loadImage(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Result<std::string>> create(runtime::ContainerSpec) override {
    throw std::runtime_error("[json.exception.type_error.316] invalid UTF-8 byte");
    co_return std::string();
  }
  asio::awaitable<runtime::Status> start(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Status> stop(std::string, std::chrono::seconds) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Status> kill(std::string, int) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Status> remove(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Result<runtime::ContainerInfo>> inspect(std::string) override {
    co_return runtime::Error{runtime::Error::Code::NotFound, "no"};
  }
  asio::awaitable<runtime::Result<std::vector<runtime::ContainerInfo>>> list(runtime::LabelSelector) override {
    co_return std::vector<runtime::ContainerInfo>{};
  }
  asio::awaitable<runtime::Result<runtime::VolumeInfo>> createVolume(runtime::VolumeSpec v) override {
    co_return runtime::VolumeInfo{v.name, v.driver, v.driverOpts, v.labels};
  }
  asio::awaitable<runtime::Result<runtime::VolumeInfo>> inspectVolume(std::string) override {
    co_return runtime::Error{runtime::Error::Code::NotFound, "no"};
  }
  asio::awaitable<runtime::Status> removeVolume(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Result<std::vector<runtime::VolumeInfo>>> listVolumes(runtime::LabelSelector) override {
    co_return std::vector<runtime::VolumeInfo>{};
  }
  asio::awaitable<runtime::Result<std::vector<std::string>>> logDrivers() override { co_return std::vector<std::string>{"json-file"}; }
  void watch(runtime::LabelSelector, runtime::EventHandlers) override {}
  void stopWatching() override {}
};

// Counts the creates that reach the engine.
class CountingRuntime final : public ThrowingRuntime {
 public:
  int creates = 0, volumeCreates = 0;
  asio::awaitable<runtime::Result<runtime::VolumeInfo>> createVolume(runtime::VolumeSpec v) override {
    ++volumeCreates;
    co_return runtime::VolumeInfo{v.name, v.driver, v.driverOpts, v.labels};
  }
  asio::awaitable<runtime::Result<std::string>> create(runtime::ContainerSpec) override {
    ++creates;
    co_return std::string("c1");
  }
};

// A copy's task-scoped volume, and engine calls that wait until the test lets them finish.
class VolumeRaceRuntime final : public ThrowingRuntime {
 public:
  explicit VolumeRaceRuntime(runtime::ContainerInfo old) : old_(std::move(old)) {}
  std::vector<std::string> calls;
  bool holdCreate = false, holdRemoveVolume = false;
  bool inCreate = false, inRemoveVolume = false;

  asio::awaitable<runtime::Result<std::string>> create(runtime::ContainerSpec) override {
    inCreate = true;
    co_await waitWhile(holdCreate);
    calls.push_back("create container");
    co_return std::string("new");
  }
  asio::awaitable<runtime::Result<std::vector<runtime::ContainerInfo>>> list(runtime::LabelSelector) override {
    co_return std::vector<runtime::ContainerInfo>{old_};
  }
  asio::awaitable<runtime::Result<runtime::VolumeInfo>> createVolume(runtime::VolumeSpec v) override {
    calls.push_back("create volume");
    co_return runtime::VolumeInfo{v.name, v.driver, v.driverOpts, v.labels};
  }
  int volumes = 1;  // the old copy's, all listed
  asio::awaitable<runtime::Result<std::vector<runtime::VolumeInfo>>> listVolumes(runtime::LabelSelector) override {
    std::vector<runtime::VolumeInfo> out;
    for (int i = 0; i < volumes; ++i) out.push_back({"vol" + std::to_string(i), "local", {}, old_.labels});
    co_return out;
  }
  asio::awaitable<runtime::Status> removeVolume(std::string) override {
    inRemoveVolume = true;
    co_await waitWhile(holdRemoveVolume);
    calls.push_back("remove volume");
    co_return runtime::Done{};
  }

 private:
  static asio::awaitable<void> waitWhile(const bool& hold) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (hold) {
      t.expires_after(std::chrono::milliseconds(5));
      co_await t.async_wait(asio::use_awaitable);
    }
  }
  runtime::ContainerInfo old_;
};

Action createOf(const config::TaskDefinition& def, const std::string& container) {
  Action a;
  a.type = Action::Type::Create;
  a.kind = Kind::Task;
  a.owner = "web-1";
  a.container = container;
  a.containerName = containerName(Kind::Task, def, "web-1", container, "i-1");
  a.definition = def;
  return a;
}

// The exited container "old" of task web-1's `container`, as an earlier agent left it.
runtime::ContainerInfo exitedContainer(const config::TaskDefinition& def, const std::string& container) {
  auto spec = buildContainerSpec(Kind::Task, def, "web-1", *def.container(container), "i-1");
  runtime::ContainerInfo c;
  c.id = "old";
  c.name = spec.name;
  c.labels = spec.labels;
  c.state = runtime::ContainerState::Exited;
  return c;
}

// A start, stop or remove of task web-1's existing container `c`.
Action stepOn(Action::Type type, const runtime::ContainerInfo& c) {
  Action a;
  a.type = type;
  a.kind = Kind::Task;
  a.owner = "web-1";
  a.containerId = c.id;
  a.containerName = c.name;
  return a;
}

}  // namespace

// P3 fails closed: a copy whose parent cgroup cannot be made is not created, rather than run
// with nothing enforcing its reservation. (The cgroup "mount" here is a directory in which a
// file stands where the memory hierarchy should be; the e2e test does it on a read-only
// cgroupfs under the real dockerd.)
TEST_CASE("executor: a copy whose task cgroup cannot be made is not created, its task stops with the cgroup path and errno") {
  asio::io_context io;
  CountingRuntime runtime;
  std::ostringstream logs;
  Logger log{logs};
  const auto mount = std::filesystem::temp_directory_path() / ("dl-cg-" + std::to_string(::getpid()));
  std::filesystem::remove_all(mount);
  std::filesystem::create_directories(mount / "cpu");
  std::ofstream(mount / "memory") << "not a hierarchy";
  TaskCgroups cgroups{log, mount};
  cgroups.configure(CgroupDriver::Cgroupfs, 1);
  Executor executor{io.get_executor(), runtime, log, "i-1"};
  executor.useCgroups(cgroups);
  std::vector<Executor::Failure> failures;
  executor.onFailure([&](const Executor::Failure& f) { failures.push_back(f); });

  auto def = test::def(R"({"family":"web","revision":1,"volumes":[{"name":"data"}],"containerDefinitions":[
    {"name":"main","image":"i","memory":64,"mountPoints":[{"sourceVolume":"data","containerPath":"/d"}]}]})");
  executor.execute({createOf(def, "main")});
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  CHECK(runtime.creates == 0);
  CHECK(runtime.volumeCreates == 0);  // nor its volumes, made again by every retry
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].stopsTask);  // reported STOPPED with it, retried after the backoff
  const std::string parent = cgroupParent(CgroupDriver::Cgroupfs, Kind::Task, def, "web-1", "i-1");
  CHECK(failures[0].message.rfind("ResourceInitializationError: task cgroup " + parent + ": ", 0) == 0);
  CHECK(failures[0].message.find("Not a directory") != std::string::npos);
  CHECK(logs.str().find("ResourceInitializationError") != std::string::npos);

  // A copy that reserves nothing has nothing to enforce: it needs no parent, and a tree
  // that cannot be written does not keep it (a daemon, say, and the slot gate) from running.
  auto bare = test::def(R"({"family":"bare","containerDefinitions":[{"name":"main","image":"i"}]})");
  executor.execute({createOf(bare, "main")});
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  CHECK(runtime.creates == 1);
  CHECK(failures.size() == 1);
  runtime.creates = 0;

  // Once the tree can be written, the same step creates the container in its parent.
  std::filesystem::remove(mount / "memory");
  std::filesystem::create_directories(mount / "memory");
  executor.execute({createOf(def, "main")});
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  CHECK(runtime.creates == 1);
  CHECK(failures.size() == 1);
  CHECK(std::filesystem::exists(mount / "memory" / parent.substr(1) / "memory.limit_in_bytes"));
  std::filesystem::remove_all(mount);
}

// A container restarted after its parent went (removed by hand, or as a leftover by an agent
// on another engine that shares daemonlet/) would be put by runc in a parent made anew with
// no limits: the start makes it again with the copy's limits first.
TEST_CASE("executor: a start makes the copy's parent cgroup again, with its limits, when it has gone") {
  asio::io_context io;
  std::ostringstream logs;
  Logger log{logs};
  const auto mount = std::filesystem::temp_directory_path() / ("dl-cgs-" + std::to_string(::getpid()));
  std::filesystem::remove_all(mount);
  std::filesystem::create_directories(mount / "memory");
  std::filesystem::create_directories(mount / "cpu");
  TaskCgroups cgroups{log, mount};
  cgroups.configure(CgroupDriver::Cgroupfs, 1);
  auto def = test::simple("web", 1, 48);
  const std::string parent = cgroupParent(CgroupDriver::Cgroupfs, Kind::Task, def, "web-1", "i-1");
  runtime::ContainerInfo exited = exitedContainer(def, "main");
  exited.cgroupParent = parent;
  VolumeRaceRuntime runtime(exited);
  Executor executor{io.get_executor(), runtime, log, "i-1"};
  executor.useCgroups(cgroups);
  REQUIRE(test::runAsync(io, executor.refresh()));
  REQUIRE(executor.observed().containers.size() == 1);

  Action start = stepOn(Action::Type::Start, exited);
  start.definition = def;
  executor.execute({start});
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  const auto limit = mount / "memory" / parent.substr(1) / "memory.limit_in_bytes";
  REQUIRE(std::filesystem::exists(limit));
  std::ifstream in(limit);
  std::string value;
  std::getline(in, value);
  CHECK(value == std::to_string(48 << 20));

  // One that is there stays as it is, even with other limits (made by an older agent):
  // rewriting an empty group's limits can fail on v1 and would keep the task down.
  { std::ofstream(limit) << "100663296"; }
  executor.execute({start});
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  std::ifstream again(limit);
  std::getline(again, value);
  CHECK(value == "100663296");
  std::filesystem::remove_all(mount);
}

// A copy's task-scoped volumes go with its last container, but never from under a create
// for the same copy: the engine would make a missing named volume anew, plain, without the
// definition's driver, options and labels.
TEST_CASE("executor: task-scoped volumes are not removed while a create for the same copy is under way, and a create waits for a removal") {
  auto def = test::def(R"({"family":"web","volumes":[{"name":"data"}],"containerDefinitions":[
    {"name":"a","image":"i","memory":16,"essential":false,"mountPoints":[{"sourceVolume":"data","containerPath":"/d"}]},
    {"name":"main","image":"i","memory":16,"mountPoints":[{"sourceVolume":"data","containerPath":"/d"}]}]})");
  const runtime::ContainerInfo old = exitedContainer(def, "a");
  for (bool createFirst : {true, false}) {
    INFO((createFirst ? "create under way, then the last container goes" : "removal under way, then a create"));
    asio::io_context io;
    VolumeRaceRuntime runtime{old};
    std::ostringstream logs;
    Logger log{logs};
    Executor executor{io.get_executor(), runtime, log, "i-1"};
    REQUIRE(test::runAsync(io, executor.refresh()));
    REQUIRE(executor.observed().containers.size() == 1);
    const Action remove = stepOn(Action::Type::Remove, old);
    if (createFirst) {
      runtime.holdCreate = true;
      executor.execute({createOf(def, "main")});
      REQUIRE(test::pumpUntil(io, [&] { return runtime.inCreate; }, 5s));
      executor.execute({remove});
      test::pumpUntil(io, [&] { return runtime.inRemoveVolume; }, 1s);
      CHECK_FALSE(runtime.inRemoveVolume);
      runtime.holdCreate = false;
      REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
      CHECK(runtime.calls == std::vector<std::string>{"create volume", "create container"});  // the new copy keeps it
    } else {
      runtime.holdRemoveVolume = true;
      executor.execute({remove});
      REQUIRE(test::pumpUntil(io, [&] { return runtime.inRemoveVolume; }, 5s));
      executor.execute({createOf(def, "main")});
      test::pumpUntil(io, [&] { return !runtime.calls.empty(); }, 1s);
      CHECK(runtime.calls.empty());  // the create waits
      runtime.holdRemoveVolume = false;
      REQUIRE(test::pumpUntil(io, [&] { return executor.idle() && runtime.calls.size() == 3; }, 5s));
      CHECK(runtime.calls == std::vector<std::string>{"remove volume", "create volume", "create container"});
    }
  }
}

// A removal that has begun finishes: a create for the same copy that arrives meanwhile
// waits for all of it, so the new copy's volumes are all fresh, never half old data.
TEST_CASE("executor: a removal of a copy's task-scoped volumes that has begun takes them all before a create of the same copy") {
  auto def = test::def(R"({"family":"web","volumes":[{"name":"data"},{"name":"logs"}],"containerDefinitions":[
    {"name":"a","image":"i","memory":16,"essential":false,"mountPoints":[{"sourceVolume":"data","containerPath":"/d"}]},
    {"name":"main","image":"i","memory":16,"mountPoints":[{"sourceVolume":"logs","containerPath":"/l"}]}]})");
  const runtime::ContainerInfo old = exitedContainer(def, "a");
  asio::io_context io;
  VolumeRaceRuntime runtime{old};
  runtime.volumes = 2;
  std::ostringstream logs;
  Logger log{logs};
  Executor executor{io.get_executor(), runtime, log, "i-1"};
  REQUIRE(test::runAsync(io, executor.refresh()));
  const Action remove = stepOn(Action::Type::Remove, old);
  runtime.holdRemoveVolume = true;
  executor.execute({remove});
  REQUIRE(test::pumpUntil(io, [&] { return runtime.inRemoveVolume; }, 5s));
  executor.execute({createOf(def, "main")});
  runtime.holdRemoveVolume = false;
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle() && runtime.calls.size() >= 4; }, 5s));
  std::string calls;
  for (const auto& c : runtime.calls) calls += c + "; ";
  INFO("calls: " << calls);
  REQUIRE(runtime.calls.size() >= 3);
  CHECK(runtime.calls[0] == "remove volume");
  CHECK(runtime.calls[1] == "remove volume");  // the removal that had begun took both
  CHECK(runtime.calls.back() == "create container");
}

// An engine call that never answers; what its coroutine holds says when it is unwound.
class HangingRuntime final : public ThrowingRuntime {
 public:
  bool called = false, unwound = false;
  asio::awaitable<runtime::Result<std::string>> create(runtime::ContainerSpec) override {
    struct Unwound {
      bool& flag;
      ~Unwound() { flag = true; }
    } guard{unwound};
    called = true;
    asio::steady_timer forever(co_await asio::this_coro::executor, std::chrono::hours(24));
    co_await forever.async_wait(asio::use_awaitable);
    co_return std::string("never");
  }
};

// The agent returns with steps still suspended (a create waiting on the engine). Their
// frames hold guards into the executor; they must be unwound while it is alive, not when
// the io_context goes after it (SIGSEGV and SIGABRT at exit in chaos trials 34 and 42).
TEST_CASE("event loop: discarding pending work unwinds suspended steps while the executor is still alive") {
  EventLoop io;
  HangingRuntime runtime;
  std::ostringstream logs;
  Logger log{logs};
  Executor executor{io.get_executor(), runtime, log, "i-1"};
  executor.execute({createOf(test::simple("web", 1), "main")});
  REQUIRE(test::pumpUntil(io, [&] { return runtime.called; }, 5s));
  io.stop();
  CHECK_FALSE(runtime.unwound);
  io.discardPendingWork();
  CHECK(runtime.unwound);
}

TEST_CASE("executor: a step that throws is logged, counted and backed off, never left in flight") {
  asio::io_context io;
  ThrowingRuntime runtime;
  std::ostringstream logs;
  Logger log{logs};
  Executor executor{io.get_executor(), runtime, log, "i-1"};
  std::vector<Executor::Failure> failures;
  std::vector<std::string> internal;
  executor.onFailure([&](const Executor::Failure& f) { failures.push_back(f); });
  executor.onInternalError([&](const std::string& where, const std::string& what) { internal.push_back(where + ": " + what); });

  auto def = test::simple("web", 1);
  Action create;
  create.type = Action::Type::Create;
  create.kind = Kind::Task;
  create.owner = "web-1";
  create.container = "main";
  create.containerName = containerName(Kind::Task, def, "web-1", "main", "i-1");
  create.definition = def;
  executor.execute({create});
  REQUIRE_FALSE(executor.idle());
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  REQUIRE(failures.size() == 1);  // the agent backs off on this, as on any failed create
  CHECK(failures[0].message.find("internal error") != std::string::npos);
  REQUIRE(internal.size() == 1);
  CHECK(internal[0].find("invalid UTF-8") != std::string::npos);
  executor.execute({create});  // and the step can be tried again
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  CHECK(failures.size() == 2);
}

// Found by the chaos campaign (trial seed 932238367681): with the engine's socket gone during
// a drain, every failed remove woke the loop, which planned the same remove again at once,
// thousands of times a second, each logged. The runtime here is the real Docker adapter,
// pointed at a socket that does not exist.
TEST_CASE("executor: a remove that fails is not tried again until its backoff has passed") {
  asio::io_context io;
  runtime::DockerRuntime runtime{io.get_executor(), "unix:///nonexistent/daemonlet-test/docker.sock"};
  std::ostringstream logs;
  Logger log{logs};
  Executor executor{io.get_executor(), runtime, log, "i-1"};
  int wakes = 0;
  Action remove;
  remove.type = Action::Type::Remove;
  remove.kind = Kind::Task;
  remove.owner = "web-1";
  remove.container = "main";
  remove.containerName = "daemonlet-task-web-1-main-0123456789ab";
  remove.containerId = "0123456789ab";
  // What the agent's loop does: every change wakes it, and it plans the same step again.
  executor.onChange([&] {
    ++wakes;
    executor.execute({remove});
  });
  const auto attempts = [&] {
    const std::string text = logs.str();
    std::size_t n = 0;
    for (auto at = text.find("remove daemonlet-task-web-1-main"); at != std::string::npos; at = text.find("remove daemonlet-task-web-1-main", at + 1)) ++n;
    return n;
  };
  executor.execute({remove});
  REQUIRE(test::pumpUntil(io, [&] { return attempts() >= 1; }, 5s));
  test::pumpUntil(io, [&] { return wakes >= 1000; }, 300ms);  // well inside the first backoff
  CHECK(attempts() == 1);
  CHECK(wakes == 0);  // nothing changed, so nothing woke the loop
  CHECK_FALSE(executor.idle());  // backing off is still this step's turn: nothing else runs it
  // Then it is tried again (after 1 s, then 2 s): the backoff ends, it does not stall.
  CHECK(test::pumpUntil(io, [&] { return attempts() >= 2; }, 10s));
}
