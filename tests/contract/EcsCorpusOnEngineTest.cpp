// Issue 11, proof: for every corpus definition that validates, the create bodies the agent
// builds are accepted by a real dockerd. This proves that ulimits, capabilities, tmpfs,
// mounts and log options map to valid engine config. The corpus is read where it lies
// (../shared/ecs-corpus) and never copied. Only what the host cannot hold is swapped:
// the image becomes the local test image, secrets come from a scratch secrets directory,
// host paths that do not exist here become scratch directories, and a shared volume that
// may not be provisioned is created first, as its owner would have done.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/TaskPreparation.h"
#include "agent/core/ContainerSpecBuilder.h"
#include "config/TaskDefinitionParser.h"
#include "support/Async.h"
#include "support/RuntimeUnderTest.h"
#include "support/TempDir.h"

using namespace daemonlet;
using namespace daemonlet::agent;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = DAEMONLET_ECS_CORPUS;

std::vector<fs::path> validFiles() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kCorpus / "valid")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Writes a value for every secret the definition names, keyed where the ARN picks a key.
void provideSecrets(const config::TaskDefinition& def, const test::TempDir& dir) {
  std::map<std::string, nlohmann::json> keyed;
  auto provide = [&](const config::Secret& s) {
    auto ref = parseSecretReference(s.valueFrom);
    REQUIRE(ref);
    if (ref->jsonKey) keyed[ref->file][*ref->jsonKey] = "value-of-" + s.name;
    else dir.write(ref->file, "value-of-" + s.name + "\n");
  };
  for (const auto& c : def.containers) {
    for (const auto& s : c.secrets) provide(s);
    if (c.logConfiguration) {
      for (const auto& s : c.logConfiguration->secretOptions) provide(s);
    }
  }
  for (const auto& [file, json] : keyed) dir.write(file, json.dump());
}

// volumesFrom sources first: the engine resolves them at create.
std::vector<const config::ContainerDefinition*> createOrder(const config::TaskDefinition& def) {
  std::vector<const config::ContainerDefinition*> out;
  std::set<std::string> placed;
  while (out.size() < def.containers.size()) {
    const std::size_t before = out.size();
    for (const auto& c : def.containers) {
      if (placed.count(c.name)) continue;
      if (std::all_of(c.volumesFrom.begin(), c.volumesFrom.end(), [&](const auto& v) { return placed.count(v.sourceContainer) > 0; })) {
        out.push_back(&c);
        placed.insert(c.name);
      }
    }
    REQUIRE(out.size() > before);  // validation refuses cycles
  }
  return out;
}

}  // namespace

TEST_CASE("ECS corpus on dockerd: every create body of every valid definition is accepted by the engine") {
  INFO("ECS corpus expected at " << kCorpus.string());
  REQUIRE(fs::is_directory(kCorpus / "valid"));
  asio::io_context io;
  auto engine = test::makeRuntimeUnderTest(io.get_executor(), test::runtimeUnderTestEndpoint());
  REQUIRE(test::runAsync(io, engine->ensureImage(test::kTestImage)).ok());
  auto drivers = test::runAsync(io, engine->logDrivers());
  REQUIRE(drivers.ok());
  const std::string instance = fmt::format("corpus-test-{}", ::getpid());
  std::ostringstream logs;
  Logger log{logs};

  int definitions = 0, containers = 0, mapped = 0;
  for (const auto& path : validFiles()) {
    auto parsed = config::loadTaskDefinitionFile(path);
    if (!parsed.ok()) continue;  // EcsCorpusTest holds which files are refused, and why
    config::TaskDefinition def = *parsed.value;
    const std::string taskId = fmt::format("corpus-{}", definitions++);
    INFO(path.filename().string());

    test::TempDir secrets, hostPaths;
    provideSecrets(def, secrets);
    for (auto& v : def.volumes) {
      if (v.hostSourcePath && !fs::exists(*v.hostSourcePath)) v.hostSourcePath = (hostPaths.path / v.name).string();
      if (v.hostSourcePath) fs::create_directories(hostPaths.path / v.name);
    }
    // A shared volume the definition expects to exist (autoprovision false) is one the
    // platform team made; app tasks may mount it only where taskPolicy.sharedVolumes says.
    std::vector<std::string> sharedMade;
    config::TaskPolicy policy;
    for (const auto& v : def.volumes) {
      if (!v.dockerVolume || !v.dockerVolume->shared || v.dockerVolume->autoprovision) continue;
      policy.sharedVolumes.push_back(v.name);
      if (test::runAsync(io, engine->inspectVolume(v.name)).ok()) continue;
      REQUIRE(test::runAsync(io, engine->createVolume({v.name, v.dockerVolume->driver, v.dockerVolume->driverOpts, v.dockerVolume->labels})).ok());
      sharedMade.push_back(v.name);
    }

    TaskPreparation preparation(*engine, log, instance);
    preparation.useSecretsDirectory(secrets.path.string());
    preparation.usePolicy(policy);
    // A driver the engine lacks is refused by name (awsfirelens); mapped, the rest of the
    // body must still be accepted.
    std::map<std::string, std::string> map;
    for (const auto& c : def.containers) {
      if (c.logConfiguration && std::find(drivers->begin(), drivers->end(), c.logConfiguration->logDriver) == drivers->end()) {
        map[c.logConfiguration->logDriver] = "json-file";
      }
    }
    if (!map.empty()) {
      auto refused = test::runAsync(io, preparation.prepare(Kind::Task, def, taskId, def.containers[0].name,
                                                            buildContainerSpec(Kind::Task, def, taskId, def.containers[0], instance)));
      REQUIRE_FALSE(refused.ok());
      CHECK(refused.error().message.find("log driver " + map.begin()->first) != std::string::npos);
      preparation.mapLogDrivers(map);
      ++mapped;
    }

    std::vector<std::string> created;
    if (def.networkMode == config::NetworkMode::Awsvpc) {
      // The copy's network namespace holder comes first: its containers join it. The
      // engine's default bridge stands in for the agent's task network here.
      auto holder = buildNetworkHolderSpec(Kind::Task, def, taskId, instance, test::kTestImage, "bridge");
      if (holder.command.empty() && holder.entrypoint.empty()) holder.command = {"sleep", "1"};  // the pause image's own
      auto id = test::runAsync(io, engine->create(holder));
      INFO("network holder: " << (id.ok() ? "" : id.error().message));
      REQUIRE(id.ok());
      created.push_back(id.value());
    }
    for (const auto* c : createOrder(def)) {
      INFO("container " << c->name);
      auto spec = test::runAsync(io, preparation.prepare(Kind::Task, def, taskId, c->name, buildContainerSpec(Kind::Task, def, taskId, *c, instance)));
      INFO((spec.ok() ? "" : spec.error().message));
      REQUIRE(spec.ok());
      spec->image = test::kTestImage;
      // The definition's own image supplies the command it leaves out; the stand-in has none.
      if (spec->command.empty() && spec->entrypoint.empty()) spec->command = {"sleep", "1"};
      auto id = test::runAsync(io, engine->create(spec.value()));
      INFO((id.ok() ? "" : id.error().message));
      CHECK(id.ok());
      if (id) created.push_back(id.value());
      ++containers;
    }
    for (auto id = created.rbegin(); id != created.rend(); ++id) test::runAsync(io, engine->remove(*id));
    test::runAsync(io, [&]() -> asio::awaitable<bool> {
      std::function<bool()> never = [] { return false; };  // named: GCC 12 and temporaries in co_await
      co_await preparation.removeVolumes(Kind::Task, taskId, def.hash, never);
      co_return true;
    }());
    for (const auto& name : sharedMade) test::runAsync(io, engine->removeVolume(name));
    auto left = test::runAsync(io, engine->listVolumes({{"io.daemonlet.instance", instance}}));
    REQUIRE(left.ok());
    CHECK(left->empty());  // the task-scoped volumes went with the task
  }
  // The README's figure: every definition that validates, all of its containers.
  CHECK(definitions == 19);
  INFO(containers << " containers, " << mapped << " definitions with a log driver mapped");
  CHECK(containers > 0);
}
