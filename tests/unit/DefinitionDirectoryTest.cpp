// The directory source's layout under the glitches config tools cause (issue 10, item 2):
// a directory moved away, swapped, or unlistable keeps the last good state; only a
// listable directory without the file removes it.
#include <catch2/catch.hpp>

#include "config/DefinitionDirectory.h"
#include "config/TaskDefinitionParser.h"
#include "support/TempDir.h"

using namespace daemonlet::config;
using daemonlet::test::TempDir;
namespace fs = std::filesystem;

namespace {

const char* kDaemon = R"({"family": "metrics", "containerDefinitions": [{"name": "main", "image": "i", "memory": 32}]})";
const char* kTask = R"({"family": "web", "containerDefinitions": [{"name": "main", "image": "i", "memory": 32}]})";

struct Tree {
  TempDir dir;
  DesiredState good;
  Tree() {
    dir.write("defs/daemons/metrics.json", kDaemon);
    dir.write("defs/tasks/web-1.json", kTask);
    dir.write("defs/tasks/web-2.json", kTask);
    auto first = loadDefinitionDirectory(root());
    REQUIRE(first.problems.empty());
    REQUIRE(first.state.daemons.size() == 1);
    REQUIRE(first.state.tasks.size() == 2);
    good = first.state;
  }
  fs::path root() const { return dir.path / "defs"; }
};

}  // namespace

TEST_CASE("definitions directory: tasks/ moved away keeps every task and says why") {
  Tree t;
  fs::rename(t.root() / "tasks", t.dir.path / "tasks.away");
  auto load = loadDefinitionDirectory(t.root(), &t.good);
  CHECK(load.state.tasks.size() == 2);
  CHECK(load.state.daemons.size() == 1);
  REQUIRE(load.problems.size() == 1);
  CHECK(load.problems[0].find("tasks") != std::string::npos);
  CHECK(load.problems[0].find("keeping the last good tasks") != std::string::npos);
}

TEST_CASE("definitions directory: the whole root gone (mv defs defs.old) keeps everything") {
  Tree t;
  fs::rename(t.root(), t.dir.path / "defs.old");
  auto load = loadDefinitionDirectory(t.root(), &t.good);
  CHECK(load.state.tasks.size() == 2);
  CHECK(load.state.daemons.size() == 1);
  CHECK(load.problems.size() == 2);
}

TEST_CASE("definitions directory: a directory that cannot be listed keeps the last good state") {
  Tree t;
  fs::remove_all(t.root() / "daemons");
  t.dir.write("defs/daemons", "not a directory");  // root ignores permissions; a file cannot be listed by anyone
  auto load = loadDefinitionDirectory(t.root(), &t.good);
  CHECK(load.state.daemons.size() == 1);
  CHECK(load.problems.size() == 1);
}

TEST_CASE("definitions directory: only a listable directory without the file removes an entry") {
  Tree t;
  fs::remove(t.root() / "tasks" / "web-2.json");
  auto load = loadDefinitionDirectory(t.root(), &t.good);
  CHECK(load.problems.empty());
  REQUIRE(load.state.tasks.size() == 1);
  CHECK(load.state.tasks[0].id == "web-1");
  fs::remove(t.root() / "tasks" / "web-1.json");
  CHECK(loadDefinitionDirectory(t.root(), &load.state).state.tasks.empty());
}

TEST_CASE("definitions directory: a root that never existed at first start is an empty desired state") {
  TempDir dir;
  auto load = loadDefinitionDirectory(dir.path / "nothing-here");
  CHECK(load.state.daemons.empty());
  CHECK(load.state.tasks.empty());
  CHECK(load.problems.empty());
  CHECK_FALSE(hasErrors(load.diagnostics));
}

TEST_CASE("task restart mode: a task file's top-level restart, a desired-state entry's restart") {
  TempDir dir;
  dir.write("defs/tasks/once.json", R"({"family": "job", "restart": "on-failure", "containerDefinitions": [{"name": "main", "image": "i", "memory": 32}]})");
  dir.write("defs/tasks/web.yaml", "family: web\ncontainerDefinitions: [{name: main, image: i, memory: 32}]\n");
  auto load = loadDefinitionDirectory(dir.path / "defs");
  REQUIRE(load.state.tasks.size() == 2);
  CHECK(load.state.task("once")->restart == TaskRestart::OnFailure);
  CHECK(load.state.task("web")->restart == TaskRestart::Always);

  dir.write("defs/tasks/bad.json", R"({"family": "job", "restart": "sometimes", "containerDefinitions": [{"name": "main", "image": "i", "memory": 32}]})");
  auto bad = loadDefinitionDirectory(dir.path / "defs");
  REQUIRE(hasErrors(bad.diagnostics));
  CHECK(bad.diagnostics[0].format().find("restart") != std::string::npos);

  auto desired = parseDesiredState(R"({"tasks": [{"id": "a", "restart": "never", "definition": {"family": "f", "containerDefinitions": [{"name": "m", "image": "i", "memory": 8}]}}]})", "response");
  REQUIRE(desired.ok());
  CHECK(desired.value->tasks[0].restart == TaskRestart::Never);
  CHECK_FALSE(parseDesiredState(R"({"tasks": [{"id": "a", "restart": 3, "definition": {"family": "f", "containerDefinitions": [{"name": "m", "image": "i", "memory": 8}]}}]})", "response").ok());
}

TEST_CASE("a YAML definition whose plain scalars the older parser re-rendered carries that older hash too") {
  auto yaml = parseTaskDefinition("family: web\ncontainerDefinitions:\n- {name: main, image: i, memory: 32, environment: [{name: V, value: 1.10}]}\n", "web.yaml");
  REQUIRE(yaml.ok());
  CHECK(yaml.value->containers[0].environment[0].value == "1.10");
  CHECK_FALSE(yaml.value->legacyHash.empty());
  CHECK(yaml.value->legacyHash != yaml.value->hash);
  auto json = parseTaskDefinition(R"({"family": "web", "containerDefinitions": [{"name": "main", "image": "i", "memory": 32}]})", "web.json");
  REQUIRE(json.ok());
  CHECK(json.value->legacyHash.empty());  // nothing re-rendered: one hash
}
