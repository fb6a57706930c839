// The executor against a real dockerd (issue 10): what it believes must match what the
// engine has, however its own steps and listings interleave. The engine is real; a thin
// pass-through lets the test hold a listing open or see an image fetch, nothing more.
#include <cstdlib>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "agent/core/ContainerSpecBuilder.h"
#include "agent/Executor.h"
#include "config/TaskDefinitionParser.h"
#include "support/Async.h"
#include "support/RuntimeUnderTest.h"

using namespace daemonlet;
using namespace daemonlet::agent;
using namespace std::chrono_literals;

namespace {

int sh(const std::string& command) { return std::system(command.c_str()); }

// Forwards to the engine; list() can be held until the test releases it, and
// ensureImage() can run a hook (a stand-in for a registry pull: there is none here).
class PassThrough final : public runtime::Runtime {
 public:
  explicit PassThrough(runtime::Runtime& engine) : engine_(engine) {}
  bool holdListings = false;
  bool listingHeld = false;
  bool release = false;
  int ensureImageCalls = 0;
  std::function<void()> onEnsureImage;

  asio::awaitable<runtime::Result<runtime::EngineInfo>> version() override { co_return co_await engine_.version(); }
  asio::awaitable<runtime::Status> ensureImage(std::string image) override {
    ++ensureImageCalls;
    if (onEnsureImage) onEnsureImage();
    co_return co_await engine_.ensureImage(image);
  }
  asio::awaitable<runtime::Status> loadImage(std::string tar) override { co_return co_await engine_.loadImage(tar); }
  asio::awaitable<runtime::Result<std::string>> create(runtime::ContainerSpec spec) override { co_return co_await engine_.create(spec); }
  asio::awaitable<runtime::Status> start(std::string id) override { co_return co_await engine_.start(id); }
  asio::awaitable<runtime::Status> stop(std::string id, std::chrono::seconds t) override { co_return co_await engine_.stop(id, t); }
  asio::awaitable<runtime::Status> kill(std::string id, int signal) override { co_return co_await engine_.kill(id, signal); }
  asio::awaitable<runtime::Status> remove(std::string id) override { co_return co_await engine_.remove(id); }
  asio::awaitable<runtime::Result<runtime::ContainerInfo>> inspect(std::string id) override { co_return co_await engine_.inspect(id); }
  asio::awaitable<runtime::Result<std::vector<runtime::ContainerInfo>>> list(runtime::LabelSelector selector) override {
    auto listed = co_await engine_.list(selector);  // taken now, answered later
    if (holdListings) {
      listingHeld = true;
      asio::steady_timer t(co_await asio::this_coro::executor);
      while (!release) {
        t.expires_after(10ms);
        co_await t.async_wait(asio::use_awaitable);
      }
    }
    co_return listed;
  }
  asio::awaitable<runtime::Result<runtime::VolumeInfo>> createVolume(runtime::VolumeSpec v) override { co_return co_await engine_.createVolume(v); }
  asio::awaitable<runtime::Result<runtime::VolumeInfo>> inspectVolume(std::string n) override { co_return co_await engine_.inspectVolume(n); }
  asio::awaitable<runtime::Status> removeVolume(std::string n) override { co_return co_await engine_.removeVolume(n); }
  asio::awaitable<runtime::Result<std::vector<runtime::VolumeInfo>>> listVolumes(runtime::LabelSelector s) override {
    co_return co_await engine_.listVolumes(s);
  }
  asio::awaitable<runtime::Result<std::vector<std::string>>> logDrivers() override { co_return co_await engine_.logDrivers(); }
  void watch(runtime::LabelSelector s, runtime::EventHandlers h) override { engine_.watch(std::move(s), std::move(h)); }
  void stopWatching() override { engine_.stopWatching(); }

 private:
  runtime::Runtime& engine_;
};

config::TaskDefinition sleeper(const std::string& family, const std::string& image = test::kTestImage) {
  auto p = config::parseTaskDefinition(
      fmt::format(R"({{"family":"{}","containerDefinitions":[{{"name":"main","image":"{}","memory":16,"command":["sleep","600"]}}]}})", family, image),
      "test.json");
  REQUIRE(p.ok());
  return *p.value;
}

Action createAction(const config::TaskDefinition& def, const std::string& taskId, const std::string& instance) {
  Action a;
  a.type = Action::Type::Create;
  a.kind = Kind::Task;
  a.owner = taskId;
  a.container = "main";
  a.containerName = containerName(Kind::Task, def, taskId, "main", instance);
  a.definition = def;
  return a;
}

struct Fixture {
  std::string instance = fmt::format("executor-test-{}", ::getpid());
  asio::io_context io;
  runtime::RuntimePtr engine = test::makeRuntimeUnderTest(io.get_executor(), test::runtimeUnderTestEndpoint());
  PassThrough runtime{*engine};
  std::ostringstream logs;
  Logger log{logs};
  Executor executor{io.get_executor(), runtime, log, instance};
  std::vector<Executor::Failure> failures;

  Fixture() {
    executor.onFailure([this](const Executor::Failure& f) { failures.push_back(f); });
  }
  ~Fixture() { sh("docker ps -aq --filter label=io.daemonlet.instance=" + instance + " | xargs -r docker rm -f >/dev/null 2>&1"); }

  bool has(const std::string& name) {
    auto o = executor.observed();
    return std::any_of(o.containers.begin(), o.containers.end(), [&](const ObservedContainer& c) { return c.name == name; });
  }
  void executeAndWait(const Action& a) {
    executor.execute({a});
    REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 30s));
  }
};

}  // namespace

TEST_CASE("executor on the engine: a container created while a listing runs does not vanish") {
  Fixture f;
  auto def = sleeper("race");
  f.runtime.holdListings = true;
  bool refreshed = false;
  asio::co_spawn(f.io, [&]() -> asio::awaitable<void> {
    co_await f.executor.refresh();
    refreshed = true;
  }, asio::detached);
  REQUIRE(test::pumpUntil(f.io, [&] { return f.runtime.listingHeld; }, 10s));  // the listing is taken: empty
  const Action create = createAction(def, "t1", f.instance);
  f.executeAndWait(create);
  REQUIRE(f.has(create.containerName));
  f.runtime.release = true;
  REQUIRE(test::pumpUntil(f.io, [&] { return refreshed; }, 10s));
  CHECK(f.has(create.containerName));  // the older listing did not erase it

  SECTION("and one removed while a listing runs does not come back") {
    f.runtime.release = false;
    f.runtime.listingHeld = false;
    refreshed = false;
    asio::co_spawn(f.io, [&]() -> asio::awaitable<void> {
      co_await f.executor.refresh();
      refreshed = true;
    }, asio::detached);
    REQUIRE(test::pumpUntil(f.io, [&] { return f.runtime.listingHeld; }, 10s));  // taken with the container in it
    auto observed = f.executor.observed();
    Action remove;
    remove.type = Action::Type::Remove;
    remove.kind = Kind::Task;
    remove.owner = "t1";
    remove.containerId = observed.containers.at(0).id;
    remove.containerName = create.containerName;
    f.executeAndWait(remove);
    REQUIRE_FALSE(f.has(create.containerName));
    f.runtime.release = true;
    REQUIRE(test::pumpUntil(f.io, [&] { return refreshed; }, 10s));
    CHECK_FALSE(f.has(create.containerName));
  }
}

TEST_CASE("executor on the engine: a 409 is resolved from the engine's answer") {
  Fixture f;
  auto def = sleeper("conflict");
  const Action create = createAction(def, "t2", f.instance);

  SECTION("our own container under that name (a create whose answer was lost) is adopted") {
    auto spec = buildContainerSpec(Kind::Task, def, "t2", def.containers[0], f.instance);
    auto id = test::runAsync(f.io, f.engine->create(spec));
    REQUIRE(id);
    f.executeAndWait(create);
    CHECK(f.failures.empty());
    CHECK(f.has(create.containerName));
    CHECK(f.logs.str().find("adopting it") != std::string::npos);
  }
  SECTION("anything else under that name is named and left alone") {
    REQUIRE(sh(fmt::format("docker create --name {} --label io.daemonlet.instance={} {} sleep 600 >/dev/null", create.containerName, f.instance,
                           test::kTestImage)) == 0);
    f.executeAndWait(create);
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0].message.find("is taken by container") != std::string::npos);
    CHECK(f.failures[0].message.find("not managed by daemonlet") != std::string::npos);
    CHECK(sh("docker inspect " + create.containerName + " >/dev/null 2>&1") == 0);  // untouched
  }
}

TEST_CASE("executor on the engine: an image removed behind its back is fetched again") {
  Fixture f;
  const std::string image = fmt::format("daemonlet/executor-test:{}", ::getpid());
  REQUIRE(sh(fmt::format("docker tag {} {}", test::kTestImage, image)) == 0);
  auto def = sleeper("pruned", image);
  f.executeAndWait(createAction(def, "t3", f.instance));
  REQUIRE(f.failures.empty());
  REQUIRE(f.runtime.ensureImageCalls == 1);
  REQUIRE(sh("docker rmi -f " + image + " >/dev/null") == 0);  // docker image prune -a
  // The "registry" brings it back when asked.
  f.runtime.onEnsureImage = [&] { sh(fmt::format("docker tag {} {}", test::kTestImage, image)); };
  f.executeAndWait(createAction(def, "t4", f.instance));
  CHECK(f.failures.empty());
  CHECK(f.runtime.ensureImageCalls == 2);
  sh("docker rmi -f " + image + " >/dev/null 2>&1");
}
