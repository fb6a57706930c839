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

TEST_CASE("state store: a corrupt file is moved aside and reported, the agent starts without it") {
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

TEST_CASE("state store: a task record of the wrong shape is dropped, the desired state is kept") {
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

TEST_CASE("state store: changed task records go to a journal, one line each, and load() replays them over the snapshot") {
  TempDir dir;
  std::ostringstream logs;
  agent::Logger log(logs);
  agent::StateStore store(dir.path, log);
  const agent::TaskRecord running{"RUNNING", "", {}};
  const agent::TaskRecord stopped{"STOPPED", "Essential container in task exited: main exited with code 3", {{"main", 3}}};
  REQUIRE(store.save({{sample(), "e"}, {{"web-1", running}, {"web-2", running}}, "i-7"}));
  const auto snapshot = fs::file_size(store.path());

  REQUIRE(store.appendRecords({{"web-1", stopped}}));
  REQUIRE(store.appendRecords({{"web-2", std::nullopt}, {"web-3", running}}));
  CHECK(fs::file_size(store.path()) == snapshot);  // proportional to what changed: the snapshot is not rewritten
  CHECK(store.journalPath().parent_path() == dir.path);
  CHECK(store.journalBytes() == fs::file_size(store.journalPath()));
  CHECK(store.journalBytes() < 400);

  agent::StateStore restarted(dir.path, log);
  auto persisted = restarted.load();
  REQUIRE(persisted);
  CHECK(persisted->tasks == std::map<std::string, agent::TaskRecord>{{"web-1", stopped}, {"web-3", running}});

  // A crash in the middle of an append leaves a torn last line: the lines before it count.
  { std::ofstream(store.journalPath(), std::ios::app) << "{\"id\":\"web-1\",\"rec"; }
  agent::StateStore afterCrash(dir.path, log);
  persisted = afterCrash.load();
  REQUIRE(persisted);
  CHECK(persisted->tasks == std::map<std::string, agent::TaskRecord>{{"web-1", stopped}, {"web-3", running}});
  // What is appended after the crash is not glued onto the torn line and lost.
  REQUIRE(afterCrash.appendRecords({{"web-3", stopped}}));
  persisted = agent::StateStore(dir.path, log).load();
  REQUIRE(persisted);
  CHECK(persisted->tasks == std::map<std::string, agent::TaskRecord>{{"web-1", stopped}, {"web-3", stopped}});

  // A full save folds the journal into the snapshot and starts a new one.
  REQUIRE(afterCrash.save({{sample(), "e"}, persisted->tasks, "i-7"}));
  CHECK_FALSE(fs::exists(afterCrash.journalPath()));
  CHECK(afterCrash.journalBytes() == 0);
}

TEST_CASE("state store: a journal older than the snapshot is not replayed over it") {
  TempDir dir;
  std::ostringstream logs;
  agent::Logger log(logs);
  agent::StateStore store(dir.path, log);
  const agent::TaskRecord running{"RUNNING", "", {}};
  const agent::TaskRecord stopped{"STOPPED", "old", {}};
  REQUIRE(store.save({{sample(), "e"}, {{"web-1", running}}, "i-7"}));
  REQUIRE(store.appendRecords({{"web-1", stopped}}));
  const fs::path stale = dir.path / "journal.before";
  fs::copy_file(store.journalPath(), stale);
  REQUIRE(store.save({{sample(), "e"}, {{"web-1", running}}, "i-7"}));  // web-1 runs again
  // A crash after the snapshot's rename and before the old journal went: it is still there.
  fs::copy_file(stale, store.journalPath());
  agent::StateStore restarted(dir.path, log);
  auto persisted = restarted.load();
  REQUIRE(persisted);
  CHECK(persisted->tasks.at("web-1") == running);
  CHECK_FALSE(fs::exists(restarted.journalPath()));  // dropped, not appended to
}

TEST_CASE("task records: only the tasks whose record changed are returned, removals as nullopt") {
  std::map<std::string, agent::TaskRecord> saved{{"a", {"RUNNING", "", {}}}, {"b", {"RUNNING", "", {}}}, {"gone", {"RUNNING", "", {}}}};
  std::vector<agent::TaskStatus> plan(3);
  plan[0].id = "b";
  plan[0].status = agent::Status::Stopped;
  plan[0].stoppedReason = "Essential container in task exited";
  plan[0].containers = {{"main", "id", "exited", 3}};
  plan[1].id = "a";
  plan[1].status = agent::Status::Running;
  plan[2].id = "new";
  plan[2].status = agent::Status::Pending;
  const auto changes = agent::applyTaskRecords(saved, plan);
  REQUIRE(changes.size() == 3);
  CHECK(changes.at("b") == agent::TaskRecord{"STOPPED", "Essential container in task exited", {{"main", 3}}});
  CHECK(changes.at("new") == agent::TaskRecord{"PENDING", "", {}});
  CHECK_FALSE(changes.at("gone").has_value());
  CHECK(saved == agent::taskRecordsOf(plan));  // `saved` now says what the plan says
  CHECK(agent::applyTaskRecords(saved, plan).empty());
}
