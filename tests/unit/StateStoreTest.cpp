#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ReconcilerWorld.h"
#include "agent/StateStore.h"
#include "support/TempDir.h"

using namespace daemonlet;
using namespace daemonlet::test;
namespace fs = std::filesystem;

namespace {

config::DesiredState sample() {
  config::DesiredState s;
  s.generation = 7;
  s.daemons = {simple("metrics", 3, 64, true)};
  s.daemons[0].sourceFile = "/etc/daemonlet/definitions/daemons/metrics.json";
  s.tasks = {{"web-1", simple("web", 2)}};
  s.tasks[0].definition.sourceFile = "/etc/daemonlet/definitions/tasks/web-1.json";
  return s;
}

}  // namespace

TEST_CASE("state store: the last good desired state survives a round trip unchanged") {
  TempDir dir;
  std::ostringstream logs;
  agent::Logger log(logs);
  agent::StateStore store(dir.path / "nested", log);  // created on first save
  CHECK_FALSE(store.load());                           // first start: nothing saved
  const auto saved = sample();
  agent::TaskRecord record{"STOPPED", "Essential container in task exited: main exited with code 3", {{"main", 3}}};
  auto withRestart = saved;
  withRestart.tasks[0].restart = config::TaskRestart::OnFailure;
  REQUIRE(store.save({{withRestart, "\"g7-abc\""}, {{"web-1", record}}, "i-7"}));
  auto persisted = store.load();
  REQUIRE(persisted);
  CHECK(persisted->instanceId == "i-7");  // records of another instance id are not ours
  CHECK(persisted->desired.state.tasks.at(0).restart == config::TaskRestart::OnFailure);
  CHECK(persisted->desired.etag == "\"g7-abc\"");  // the next long poll asks "changed since this?"
  CHECK(persisted->tasks == std::map<std::string, agent::TaskRecord>{{"web-1", record}});
  const config::DesiredState* loaded = &persisted->desired.state;
  CHECK(loaded->generation == 7);
  REQUIRE(loaded->daemons.size() == 1);
  CHECK(loaded->daemons[0].hash == saved.daemons[0].hash);  // the same revision, not a rollout
  CHECK(loaded->daemons[0].sourceFile == saved.daemons[0].sourceFile);
  CHECK(loaded->daemons[0].containers[0].healthCheck.has_value());
  REQUIRE(loaded->tasks.size() == 1);
  CHECK(loaded->tasks[0].id == "web-1");
  CHECK(loaded->tasks[0].definition.hash == saved.tasks[0].definition.hash);
  CHECK(fs::directory_iterator(dir.path / "nested")->path().filename() == "state.json");  // no temp file left
  CHECK((fs::status(store.path()).permissions() & fs::perms::others_read) == fs::perms::none);
}

TEST_CASE("state store: a corrupt file is moved aside and reported; the agent starts without it") {
  TempDir dir;
  std::ostringstream logs;
  agent::Logger log(logs);
  agent::StateStore store(dir.path, log);
  const char* cases[] = {"{not json", R"({"format": 99})",
                         R"({"format": 1, "daemons": [{"sourceFile": "x", "definition": {"family": "m", "containerDefinitions": [{"name": "a", "image": "i", "memory": "lots"}]}}]})",
                         R"({"format": 1, "tasks": [{"sourceFile": "x", "definition": {"family": "m", "containerDefinitions": [{"name": "a", "image": "i"}]}}]})",
                         // A field of the wrong type: found by the chaos campaign, it ended the agent.
                         R"({"format": "1"})", R"({"format": 1, "daemons": {"a": 1}})", R"({"format": 1, "tasks": 3})",
                         R"({"format": 1, "daemons": [{"sourceFile": 4, "definition": []}]})"};
  for (const char* text : cases) {
    INFO(text);
    logs.str("");
    std::ofstream(store.path()) << text;
    CHECK_FALSE(store.load());
    CHECK_FALSE(fs::exists(store.path()));
    CHECK(logs.str().find("moved aside to " + (dir.path / "state.json.corrupt-").string()) != std::string::npos);
    for (const auto& f : dir.files()) fs::remove(dir.path / f);
  }
}

TEST_CASE("state store: a task record of the wrong shape is dropped; the desired state is kept") {
  TempDir dir;
  std::ostringstream logs;
  agent::Logger log(logs);
  agent::StateStore store(dir.path, log);
  REQUIRE(store.save({{sample(), "\"e\""}, {{"web-1", agent::TaskRecord{"RUNNING", "", {}}}}, "i-7"}));
  std::ifstream in(store.path());
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
  const auto at = doc.find("\"RUNNING\"");
  REQUIRE(at != std::string::npos);
  doc.replace(at, 9, "5");  // "status": 5
  std::ofstream(store.path()) << doc;
  auto persisted = store.load();
  REQUIRE(persisted);
  CHECK(persisted->desired.state.tasks.size() == 1);
  CHECK(persisted->tasks.count("web-1") == 0);
  CHECK(fs::exists(store.path()));
}

TEST_CASE("state store: a side field of the wrong type is read as absent, and the definitions are kept (P6, P7)") {
  TempDir dir;
  std::ostringstream logs;
  agent::Logger log(logs);
  agent::StateStore store(dir.path, log);
  REQUIRE(store.save({{sample(), "\"e\""}, {}, "i-7"}));
  std::ifstream in(store.path());
  const nlohmann::json good = nlohmann::json::parse(in);
  const std::pair<const char*, nlohmann::json> edits[] = {{"etag", 5}, {"generation", "7"}, {"instanceStatus", nlohmann::json::array()}};
  for (const auto& [key, value] : edits) {
    INFO(key);
    nlohmann::json doc = good;
    REQUIRE(doc.contains(key));
    doc[key] = value;
    std::ofstream(store.path()) << doc.dump();
    logs.str("");
    auto persisted = store.load();
    REQUIRE(persisted);
    CHECK(persisted->desired.state.daemons.size() == 1);
    CHECK(persisted->desired.state.tasks.size() == 1);
    CHECK(persisted->desired.state.instanceStatus == config::InstanceStatus::Active);
    CHECK(fs::exists(store.path()));
    CHECK(logs.str().find("read as absent, the saved definitions are kept") != std::string::npos);
  }
}
