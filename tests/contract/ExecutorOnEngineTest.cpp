// The executor against a real dockerd (issue 10): what it believes must match what the
// engine has, however its own steps and listings interleave. The engine is real; a thin
// pass-through lets the test hold a listing open or see an image fetch, nothing more.
#include <cstdlib>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "agent/core/ContainerSpecBuilder.h"
#include "agent/EventLoop.h"
#include "agent/Executor.h"
#include "config/TaskDefinitionParser.h"
#include "support/Async.h"
#include "support/TempDir.h"
#include "support/RuntimeUnderTest.h"

using namespace daemonlet;
using namespace daemonlet::agent;
using namespace std::chrono_literals;

namespace {

int sh(const std::string& command) { return std::system(command.c_str()); }

std::string output(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, p)) > 0;) out.append(buffer, n);
    ::pclose(p);
  }
  return out;
}

config::TaskDefinition definition(const std::string& json) {
  auto p = config::parseTaskDefinition(json, "test.json");
  for (const auto& d : p.diagnostics) INFO(d.format());
  REQUIRE(p.ok());
  return *p.value;
}

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

Action createAction(const config::TaskDefinition& def, const std::string& taskId, const std::string& instance,
                    const std::string& container = "main") {
  Action a;
  a.type = Action::Type::Create;
  a.kind = Kind::Task;
  a.owner = taskId;
  a.container = container;
  a.containerName = containerName(Kind::Task, def, taskId, container, instance);
  a.definition = def;
  return a;
}

struct Fixture {
  std::string instance = fmt::format("executor-test-{}", ::getpid());
  EventLoop io;
  runtime::RuntimePtr engine = test::makeRuntimeUnderTest(io.get_executor(), test::runtimeUnderTestEndpoint());
  PassThrough runtime{*engine};
  std::ostringstream logs;
  Logger log{logs};
  Executor executor{io.get_executor(), runtime, log, instance};
  std::vector<Executor::Failure> failures;

  Fixture() {
    executor.onFailure([this](const Executor::Failure& f) { failures.push_back(f); });
  }
  ~Fixture() {
    // As the agent does on its way out: a step still under way (a volume removal spawned
    // by a remove) is unwound while the executor it counts in is alive. ASan caught
    // ~io_context doing it after the executor was gone.
    io.discardPendingWork();
    sh("docker ps -aq --filter label=io.daemonlet.instance=" + instance + " | xargs -r docker rm -f >/dev/null 2>&1");
    sh("docker volume ls -q --filter label=io.daemonlet.instance=" + instance + " | xargs -r docker volume rm >/dev/null 2>&1");
  }

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

TEST_CASE("executor on the engine: secrets reach the environment from secrets.directory, a missing one creates nothing") {
  Fixture f;
  test::TempDir secrets;
  const std::string canary = fmt::format("canary-{}-x7Qp", ::getpid());
  secrets.write("db_password", canary + "\n");
  secrets.write("db-AbCdEf", R"({"username":"app-user","password":"unused"})");
  f.executor.useSecretsDirectory(secrets.path.string());
  auto def = definition(fmt::format(R"({{"family":"secrets","containerDefinitions":[{{"name":"main","image":"{}","memory":16,
    "command":["sleep","600"],"environment":[{{"name":"DB_PASSWORD","value":"plain"}}],
    "secrets":[{{"name":"DB_PASSWORD","valueFrom":"/prod/db_password"}},
               {{"name":"DB_USER","valueFrom":"arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf:username::"}}]}}]}})", test::kTestImage));
  const Action create = createAction(def, "s1", f.instance);
  f.executeAndWait(create);
  INFO(f.logs.str());
  REQUIRE(f.failures.empty());
  const std::string env = output("docker inspect -f '{{json .Config.Env}}' " + create.containerName);
  CHECK(env.find("\"DB_PASSWORD=" + canary + "\"") != std::string::npos);
  CHECK(env.find("DB_PASSWORD=plain") == std::string::npos);  // the secret wins
  CHECK(env.find("\"DB_USER=app-user\"") != std::string::npos);
  CHECK(output("docker inspect -f '{{json .Config.Labels}}' " + create.containerName).find(canary) == std::string::npos);
  CHECK(f.logs.str().find(canary) == std::string::npos);

  SECTION("a missing secret of any container stops the whole task before anything is created") {
    auto two = definition(fmt::format(R"({{"family":"missing","containerDefinitions":[
      {{"name":"main","image":"{0}","memory":16,"secrets":[{{"name":"API_KEY","valueFrom":"arn:aws:ssm:eu-west-1:1:parameter/app/api_key"}}]}},
      {{"name":"sidecar","image":"{0}","memory":16}}]}})", test::kTestImage));
    f.executeAndWait(createAction(two, "s2", f.instance, "sidecar"));
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0].stopsTask);
    CHECK(f.failures[0].message.rfind("ResourceInitializationError: secret API_KEY not found", 0) == 0);
    CHECK(f.failures[0].message.find((secrets.path / "api_key").string()) != std::string::npos);
    CHECK(sh("docker inspect " + containerName(Kind::Task, two, "s2", "sidecar", f.instance) + " >/dev/null 2>&1") != 0);
  }
}

TEST_CASE("executor on the engine: task-scoped volumes are made with their driver options and go with the task, shared ones stay") {
  Fixture f;
  const std::string shared = fmt::format("dltest-shared-{}", ::getpid());
  auto def = definition(fmt::format(R"({{"family":"vols","volumes":[
      {{"name":"scratch","dockerVolumeConfiguration":{{"scope":"task","driver":"local","autoprovision":false,
        "driverOpts":{{"type":"tmpfs","device":"tmpfs","o":"size=8m"}},"labels":{{"team":"data"}}}}}},
      {{"name":"empty"}},
      {{"name":"{1}","dockerVolumeConfiguration":{{"scope":"shared","autoprovision":true,"driver":"local","labels":{{"io.daemonlet.test":"{2}"}}}}}}],
    "containerDefinitions":[{{"name":"main","image":"{0}","memory":16,"command":["sleep","600"],
      "mountPoints":[{{"sourceVolume":"scratch","containerPath":"/scratch"}},{{"sourceVolume":"empty","containerPath":"/empty"}},
                     {{"sourceVolume":"{1}","containerPath":"/shared"}}]}}]}})", test::kTestImage, shared, f.instance));
  const Action create = createAction(def, "v1", f.instance);
  f.executeAndWait(create);
  INFO(f.logs.str());
  REQUIRE(f.failures.empty());
  const std::string scratch = volumeName(Kind::Task, def, "v1", def.volumes[0], f.instance);
  const std::string empty = volumeName(Kind::Task, def, "v1", def.volumes[1], f.instance);
  auto made = test::runAsync(f.io, f.engine->inspectVolume(scratch));
  REQUIRE(made.ok());
  CHECK(made->options.at("o") == "size=8m");
  CHECK(made->labels.at("team") == "data");
  CHECK(made->labels.at("io.daemonlet.task-id") == "v1");
  REQUIRE(test::runAsync(f.io, f.engine->inspectVolume(empty)).ok());
  REQUIRE(test::runAsync(f.io, f.engine->inspectVolume(shared)).ok());
  REQUIRE(sh("docker start " + create.containerName + " >/dev/null") == 0);
  CHECK(output("docker exec " + create.containerName + " df -k /scratch").find("8192") != std::string::npos);  // the driver options hold

  auto observed = f.executor.observed();
  REQUIRE(observed.containers.size() == 1);
  Action remove;
  remove.type = Action::Type::Remove;
  remove.kind = Kind::Task;
  remove.owner = "v1";
  remove.containerId = observed.containers[0].id;
  remove.containerName = create.containerName;
  f.executeAndWait(remove);
  auto gone = [&](const std::string& name) {
    auto v = test::runAsync(f.io, f.engine->inspectVolume(name));
    return !v.ok() && v.error().code == runtime::Error::Code::NotFound;
  };
  CHECK(test::pumpUntil(f.io, [&] { return gone(scratch) && gone(empty); }, 10s));
  CHECK_FALSE(gone(shared));  // shared: kept

  SECTION("a shared volume that is missing and may not be provisioned is a task error") {
    auto strict = definition(fmt::format(R"({{"family":"strict","volumes":[{{"name":"{1}-absent","dockerVolumeConfiguration":{{"scope":"shared","autoprovision":false}}}}],
      "containerDefinitions":[{{"name":"main","image":"{0}","memory":16,"mountPoints":[{{"sourceVolume":"{1}-absent","containerPath":"/d"}}]}}]}})",
                                         test::kTestImage, shared));
    f.executeAndWait(createAction(strict, "v2", f.instance));
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0].stopsTask);
    CHECK(f.failures[0].message.find("shared volume " + shared + "-absent does not exist and autoprovision is false") != std::string::npos);
    CHECK(gone(shared + "-absent"));
  }
  sh("docker volume rm " + shared + " >/dev/null 2>&1");
}

TEST_CASE("executor on the engine: log drivers are used as written, a missing one is named, logDrivers maps it") {
  Fixture f;
  auto withDriver = [&](const std::string& family, const std::string& driver, const std::string& options) {
    return definition(fmt::format(R"({{"family":"{}","containerDefinitions":[{{"name":"main","image":"{}","memory":16,"command":["sleep","600"],
      "logConfiguration":{{"logDriver":"{}","options":{}}}}}]}})", family, test::kTestImage, driver, options));
  };
  SECTION("a driver the engine does not have: a task error naming it; nothing created") {
    auto def = withDriver("firelens", "awsfirelens", R"({"Name":"cloudwatch"})");
    const Action create = createAction(def, "l1", f.instance);
    f.executeAndWait(create);
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0].stopsTask);
    CHECK(f.failures[0].message.find("log driver awsfirelens of container main is not available on this host") != std::string::npos);
    CHECK(f.failures[0].message.find("logDrivers") != std::string::npos);
    CHECK(sh("docker inspect " + create.containerName + " >/dev/null 2>&1") != 0);
  }
  SECTION("mapped by logDrivers: created with the host's driver, its own options dropped, with a warning naming both") {
    f.executor.mapLogDrivers({{"awsfirelens", "json-file"}});
    auto def = withDriver("firelens", "awsfirelens", R"({"Name":"cloudwatch","mode":"non-blocking"})");
    const Action create = createAction(def, "l2", f.instance);
    f.executeAndWait(create);
    INFO(f.logs.str());
    REQUIRE(f.failures.empty());
    CHECK(output("docker inspect -f '{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}' " + create.containerName) ==
          "json-file {\"mode\":\"non-blocking\"}\n");
    CHECK(f.logs.str().find("log driver awsfirelens is mapped to json-file (logDrivers in the agent config); its options Name are dropped") !=
          std::string::npos);
  }
  SECTION("as written: awslogs without AWS credentials is created, fails at start, and the error names the driver") {
    auto def = withDriver("cloudwatch", "awslogs", R"({"awslogs-group":"/daemonlet/test","awslogs-region":"eu-west-1","awslogs-stream-prefix":"t"})");
    const Action create = createAction(def, "l3", f.instance);
    f.executeAndWait(create);
    INFO((f.failures.empty() ? std::string() : f.failures[0].message));
    REQUIRE(f.failures.empty());
    CHECK(output("docker inspect -f '{{.HostConfig.LogConfig.Type}}' " + create.containerName) == "awslogs\n");
    Action start;
    start.type = Action::Type::Start;
    start.kind = Kind::Task;
    start.owner = "l3";
    start.containerId = f.executor.observed().containers.at(0).id;
    start.containerName = create.containerName;
    f.executeAndWait(start);
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0].stopsTask);
    CHECK(f.failures[0].message.find("log driver awslogs of container main cannot start on this host") != std::string::npos);
  }
}
