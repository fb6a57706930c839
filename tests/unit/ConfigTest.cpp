#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "config/AgentConfig.h"
#include "config/DefinitionDirectory.h"
#include "config/DesiredState.h"
#include "config/Resources.h"
#include "config/TaskDefinitionParser.h"
#include "support/TempDir.h"

using namespace daemonlet::config;
using daemonlet::test::TempDir;
namespace fs = std::filesystem;

namespace {

TaskDefinition definition(const std::string& json) {
  auto p = parseTaskDefinition(json, "t.json");
  REQUIRE(p.ok());
  return *p.value;
}

std::string daemonJson(const std::string& family, int memory) {
  return R"({"family":")" + family + R"(","containerDefinitions":[{"name":"c","image":"i","memory":)" + std::to_string(memory) + "}]}";
}

}  // namespace

TEST_CASE("reservation: task level wins, else containers add up") {
  struct Case {
    const char* what;
    const char* json;
    Resources expected;
  };
  const Case cases[] = {
      {"containers' memory", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","cpu":100,"memory":64},{"name":"b","image":"i","cpu":28,"memory":32}]})", {128, 96}},
      {"memoryReservation preferred over memory", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":256,"memoryReservation":64}]})", {0, 64}},
      {"reservation alone", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memoryReservation":100}]})", {0, 100}},
      {"task level overrides", R"({"family":"f","cpu":"1 vCPU","memory":"512","containerDefinitions":[{"name":"a","image":"i","cpu":10,"memory":64}]})", {1024, 512}},
      {"task cpu only", R"({"family":"f","cpu":2048,"containerDefinitions":[{"name":"a","image":"i","cpu":10,"memory":64}]})", {2048, 64}},
      {"nothing declared", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i"}]})", {0, 0}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    CHECK(reservationOf(definition(c.json)) == c.expected);
  }
  CHECK(Resources{100, 100}.fitsIn({100, 100}));
  CHECK_FALSE(Resources{101, 100}.fitsIn({100, 100}));
}

TEST_CASE("agent config: defaults, file, drop-ins in name order, flags later") {
  TempDir dir;
  SECTION("no file: built-in defaults") {
    auto p = loadAgentConfig(dir.path / "config.yaml", false);
    REQUIRE(p.ok());
    CHECK(p.value->source.type == SourceType::Directory);
    CHECK(p.value->source.path == "/etc/daemonlet/definitions");
    CHECK(p.value->listen == "127.0.0.1:51680");
    CHECK(p.value->instance.reserved == Resources{0, 256});
    CHECK_FALSE(p.value->instance.capacity);
    CHECK(runtimeEndpoint(*p.value) == "unix:///var/run/docker.sock");
    CHECK(p.value->drainTimeoutSeconds == 300);
  }
  SECTION("an explicit file that is missing is an error") {
    auto p = loadAgentConfig(dir.path / "nope.yaml", true);
    CHECK_FALSE(p.ok());
    CHECK(p.diagnostics[0].message == "no such config file");
  }
  SECTION("drop-ins override the file, later names win") {
    dir.write("config.yaml", "instance:\n  cluster: prod\n  capacity: {cpu: 4096, memory: 15360}\nruntime:\n  type: containerd\n");
    dir.write("config.d/10-a.yaml", "instance:\n  cluster: staging\n  reserved: {memory: 512}\n");
    dir.write("config.d/20-b.yaml", "instance:\n  cluster: canary\n");
    dir.write("config.d/ignored.txt", "garbage: [");
    auto p = loadAgentConfig(dir.path / "config.yaml", true);
    for (auto& d : p.diagnostics) INFO(d.format());
    REQUIRE(p.ok());
    CHECK(p.value->instance.cluster == "canary");
    CHECK(p.value->instance.capacity == Resources{4096, 15360});
    CHECK(p.value->instance.reserved == Resources{0, 512});
    CHECK(runtimeEndpoint(*p.value) == "unix:///run/containerd/containerd.sock");
  }
  SECTION("an unknown key is an error naming file, line and key") {
    dir.write("config.yaml", "instance:\n  clustr: prod\n");
    auto p = loadAgentConfig(dir.path / "config.yaml", true);
    CHECK_FALSE(p.ok());
    REQUIRE(p.diagnostics.size() == 1);
    CHECK(p.diagnostics[0].format() == (dir.path / "config.yaml").string() + ":2:3: field 'instance.clustr': unknown key");
  }
  SECTION("secrets.directory and logDrivers (DESIGN 3.2)") {
    auto defaults = loadAgentConfig(dir.path / "config.yaml", false);
    REQUIRE(defaults.ok());
    CHECK(defaults.value->secretsDirectory == "/etc/daemonlet/secrets");
    CHECK(defaults.value->logDrivers.empty());
    dir.write("config.yaml", "secrets:\n  directory: /srv/secrets\nlogDrivers: {awslogs: journald, splunk: json-file}\n");
    auto p = loadAgentConfig(dir.path / "config.yaml", true);
    for (auto& d : p.diagnostics) INFO(d.format());
    REQUIRE(p.ok());
    CHECK(p.value->secretsDirectory == "/srv/secrets");
    CHECK(p.value->logDrivers == std::map<std::string, std::string>{{"awslogs", "journald"}, {"splunk", "json-file"}});
    dir.write("config.yaml", "secrets:\n  dir: /srv\nlogDrivers: [awslogs]\n");
    auto bad = loadAgentConfig(dir.path / "config.yaml", true);
    CHECK_FALSE(bad.ok());
    REQUIRE(bad.diagnostics.size() == 2);
    CHECK(bad.diagnostics[0].format() == (dir.path / "config.yaml").string() + ":2:3: field 'secrets.dir': unknown key");
    CHECK(bad.diagnostics[1].field == "logDrivers");
  }
  SECTION("a bad drop-in is reported under its own name") {
    dir.write("config.yaml", "log: {level: debug}\n");
    dir.write("config.d/50-bad.yaml", "shutdown:\n  drainTimeoutSeconds: soon\n");
    auto p = loadAgentConfig(dir.path / "config.yaml", true);
    CHECK_FALSE(p.ok());
    CHECK(p.diagnostics[0].file == (dir.path / "config.d/50-bad.yaml").string());
    CHECK(p.diagnostics[0].line == 2);
  }
  SECTION("broken fixture: every error is reported") {
    auto p = loadAgentConfig(fs::path(DAEMONLET_TEST_DATA) / "broken/config.yaml", true);
    std::size_t errors = 0;
    for (const auto& d : p.diagnostics) errors += d.severity == Severity::Error;
    CHECK(errors == 5);
  }
}

TEST_CASE("agent config: taskNetwork names the awsvpc bridge and its subnet, and refuses what cannot be one") {
  TempDir dir;
  auto p = loadAgentConfig(dir.path / "config.yaml", false);
  REQUIRE(p.ok());
  CHECK(p.value->taskNetwork.name == "daemonlet0");
  CHECK(p.value->taskNetwork.subnet == "172.30.0.0/20");
  dir.write("config.yaml", "taskNetwork:\n  name: tasks1\n  subnet: 10.77.0.0/24\n");
  p = loadAgentConfig(dir.path / "config.yaml", true);
  REQUIRE(p.ok());
  CHECK(p.value->taskNetwork.name == "tasks1");
  CHECK(p.value->taskNetwork.subnet == "10.77.0.0/24");
  dir.write("config.yaml", "taskNetwork:\n  name: a-name-longer-than-15\n  subnet: 10.77.0.0\n  mtu: 9000\n");
  p = loadAgentConfig(dir.path / "config.yaml", true);
  CHECK_FALSE(p.ok());
  REQUIRE(p.diagnostics.size() == 3);
  CHECK(p.diagnostics[0].format().find(":2:9: field 'taskNetwork.name': \"a-name-longer-than-15\" is not a network interface name") != std::string::npos);
  CHECK(p.diagnostics[1].format().find(":3:11: field 'taskNetwork.subnet': \"10.77.0.0\" is not an IPv4 CIDR") != std::string::npos);
  CHECK(p.diagnostics[2].format().find("field 'taskNetwork.mtu': unknown key") != std::string::npos);
}

TEST_CASE("agent config: runtime.maxCallsInFlight bounds engine calls, 8 unless set, 1 to 256") {
  TempDir dir;
  auto p = loadAgentConfig(dir.path / "config.yaml", false);
  REQUIRE(p.ok());
  CHECK(p.value->runtime.maxCallsInFlight == 8);
  dir.write("config.yaml", "runtime:\n  maxCallsInFlight: 16\n");
  p = loadAgentConfig(dir.path / "config.yaml", true);
  REQUIRE(p.ok());
  CHECK(p.value->runtime.maxCallsInFlight == 16);
  dir.write("config.yaml", "runtime:\n  maxCallsInFlight: 0\n");
  p = loadAgentConfig(dir.path / "config.yaml", true);
  CHECK_FALSE(p.ok());
  REQUIRE(p.diagnostics.size() == 1);
  CHECK(p.diagnostics[0].format().find(":2:21: field 'runtime.maxCallsInFlight': must be between 1 and 256, got 0") != std::string::npos);
}

TEST_CASE("directory source: one bad file is skipped, the rest load (P6)") {
  TempDir dir;
  dir.write("daemons/metrics.json", daemonJson("metrics", 64));
  dir.write("daemons/logs.yaml", "family: logs\ncontainerDefinitions:\n  - {name: c, image: i, memory: 32}\n");
  dir.write("daemons/README.md", "not a definition");
  dir.write("tasks/web-1.json", daemonJson("web", 128));
  dir.write("tasks/web-2.json", daemonJson("web", 128));

  auto first = loadDefinitionDirectory(dir.path);
  INFO((first.diagnostics.empty() ? "" : first.diagnostics[0].format()));
  REQUIRE_FALSE(hasErrors(first.diagnostics));
  CHECK(first.state.daemons.size() == 2);
  REQUIRE(first.state.tasks.size() == 2);
  CHECK(first.state.task("web-1"));

  SECTION("a broken file keeps its last good version") {
    dir.write("daemons/metrics.json", R"({"family":"metrics","containerDefinitions":[{"name":"c","image":"i","memory":"x"}]})");
    dir.write("tasks/web-2.json", "{");
    auto second = loadDefinitionDirectory(dir.path, &first.state);
    CHECK(hasErrors(second.diagnostics));
    REQUIRE(second.state.daemon("metrics"));
    CHECK(second.state.daemon("metrics")->hash == first.state.daemon("metrics")->hash);
    REQUIRE(second.state.task("web-2"));
    CHECK(second.state.daemons.size() == 2);
  }
  SECTION("without a last good version a broken file is just skipped") {
    dir.write("tasks/web-3.json", "{");
    auto second = loadDefinitionDirectory(dir.path);
    CHECK(hasErrors(second.diagnostics));
    CHECK(second.state.tasks.size() == 2);
  }
  SECTION("a second file for the same family is refused") {
    dir.write("daemons/metrics-copy.json", daemonJson("metrics", 64));
    auto second = loadDefinitionDirectory(dir.path);
    CHECK(hasErrors(second.diagnostics));
    CHECK(second.state.daemons.size() == 2);
  }
  SECTION("a deleted file is gone from the desired state") {
    fs::remove(dir.path / "tasks/web-1.json");
    auto second = loadDefinitionDirectory(dir.path, &first.state);
    CHECK_FALSE(second.state.task("web-1"));
  }
  SECTION("a bad task id in the file name is refused") {
    dir.write("tasks/web 4.json", daemonJson("web", 128));
    auto second = loadDefinitionDirectory(dir.path);
    CHECK(hasErrors(second.diagnostics));
    CHECK(second.state.tasks.size() == 2);
  }
}

TEST_CASE("bundled example definitions are valid") {
  auto load = loadDefinitionDirectory(fs::path(DAEMONLET_EXAMPLES) / "definitions");
  for (const auto& d : load.diagnostics) INFO(d.format());
  CHECK(load.diagnostics.empty());
  CHECK(load.state.daemons.size() == 2);
  CHECK(load.state.tasks.size() == 2);
}

TEST_CASE("desired state documents are accepted or rejected whole") {
  const std::string good = R"({"generation":7,"instanceStatus":"DRAINING",
    "daemons":[)" + daemonJson("metrics", 64) + R"(],
    "tasks":[{"id":"web-1","definition":)" + daemonJson("web", 128) + "}]}";
  auto p = parseDesiredState(good, "response");
  REQUIRE(p.ok());
  CHECK(p.value->generation == 7);
  CHECK(p.value->instanceStatus == InstanceStatus::Draining);
  CHECK(p.value->tasks[0].definition.family == "web");

  auto bad = parseDesiredState(R"({"generation":8,"daemons":[)" + daemonJson("metrics", 64) +
                                   R"(],"tasks":[{"id":"web-1","definition":{"family":"web","containerDefinitions":[{"name":"c","image":"i","memory":"big"}]}}]})",
                               "response");
  CHECK_FALSE(bad.value.has_value());
  REQUIRE(hasErrors(bad.diagnostics));
  CHECK(bad.diagnostics[0].field == "tasks[0].definition.containerDefinitions[0].memory");
  CHECK(bad.diagnostics[0].line == 1);

  auto dup = parseDesiredState(R"({"daemons":[)" + daemonJson("m", 64) + "," + daemonJson("m", 64) + "]}", "response");
  CHECK_FALSE(dup.value.has_value());
}

TEST_CASE("agent config and desired state refuse bytes that are not UTF-8 and say where") {
  AgentConfig config;
  Diagnostics out;
  applyConfigText(config, "instance:\n  attributes: {site: Z\xFCrich}\n", "/etc/daemonlet/config.yaml", out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].format() == "/etc/daemonlet/config.yaml:2:23: invalid UTF-8 (byte 0xFC): only UTF-8 text is accepted");
  CHECK(config.instance.attributes.empty());

  TempDir dir;
  dir.write("config.yaml", "listen: 127.0.0.1:1\n");
  dir.write("config.d/10-site.yaml", "instance: {cluster: \"caf\xE9\"}\n");
  auto loaded = loadAgentConfig(dir.path / "config.yaml", true);
  CHECK_FALSE(loaded.ok());
  REQUIRE(loaded.diagnostics.size() == 1);
  CHECK(loaded.diagnostics[0].format() == (dir.path / "config.d/10-site.yaml").string() + ":1:25: invalid UTF-8 (byte 0xE9): only UTF-8 text is accepted");

  // The agent logs and persists what it accepts as JSON; a response it cannot dump is
  // rejected as a whole, like any other bad response.
  const std::string response = R"({"generation":3,"tasks":[{"id":"t","definition":)" + daemonJson("web", 64) + "}],\n" +
                               "\"instanceStatus\":\"ACTIVE\xA0\"}";
  auto state = parseDesiredState(response, "control endpoint response");
  CHECK_FALSE(state.value.has_value());
  REQUIRE(state.diagnostics.size() == 1);
  CHECK(state.diagnostics[0].format() == "control endpoint response:2:25: invalid UTF-8 (byte 0xA0): only UTF-8 text is accepted");
}

TEST_CASE("desired state from the control endpoint is strict JSON, positioned like a .json file") {
  const std::string daemons = R"({"generation":1,"daemons":[)" + daemonJson("m", 64) + "]";
  // YAML, of which JSON is a part, would take all of these.
  struct Case {
    const char* what;
    std::string text;
    const char* error;
  };
  const Case cases[] = {
      {"trailing comma", daemons + ",\n}", "control endpoint response:1:105: invalid JSON: trailing comma before '}'"},
      {"comment", "# hi\n" + daemons + "}", "control endpoint response:1:1: invalid JSON: invalid literal; last read: '#'"},
      {"YAML block", "generation: 1\n", "control endpoint response:1:1: invalid JSON: invalid literal; last read: 'g'"},
      {"number past a double", R"({"generation":1e400})", "control endpoint response:1:15: invalid JSON: number 1e400 is out of range"},
      {"duplicate key", R"({"generation":1,"generation":2})", "control endpoint response:1:17: field 'generation': duplicate key 'generation' (first at line 1, column 2): remove one"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto p = parseDesiredState(c.text, "control endpoint response");
    CHECK_FALSE(p.value.has_value());
    REQUIRE_FALSE(p.diagnostics.empty());
    CHECK(p.diagnostics[0].format() == c.error);
  }
  auto ok = parseDesiredState(daemons + "}", "control endpoint response");
  CHECK(ok.ok());
}

TEST_CASE("desired state: null is absent, and a definition may be describe-task-definition output") {
  auto p = parseDesiredState(R"({"generation":2,"instanceStatus":null,"daemons":null,
    "tasks":[{"id":"web","restart":null,"definition":{"taskDefinition":)" + daemonJson("web", 64) + "}}]}",
                             "control endpoint response");
  INFO((p.diagnostics.empty() ? std::string() : p.diagnostics[0].format()));
  REQUIRE(p.ok());
  CHECK(p.value->instanceStatus == InstanceStatus::Active);
  CHECK(p.value->tasks[0].definition.family == "web");
  CHECK(p.value->tasks[0].restart == TaskRestart::Always);
  auto noId = parseDesiredState(R"({"tasks":[{"id":null,"definition":)" + daemonJson("web", 64) + "}]}", "control endpoint response");
  CHECK_FALSE(noId.value.has_value());
  REQUIRE_FALSE(noId.diagnostics.empty());
  CHECK(noId.diagnostics[0].field == "tasks[0].id");
  CHECK(noId.diagnostics[0].message == "required field is missing");
}
