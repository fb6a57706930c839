#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "config/TaskDefinitionParser.h"

using namespace daemonlet::config;
namespace fs = std::filesystem;

namespace {

const fs::path kData = DAEMONLET_TEST_DATA;

std::string errorsOf(const Parsed<TaskDefinition>& p) {
  std::string out;
  for (const auto& d : p.diagnostics) out += d.format() + "\n";
  return out;
}

Parsed<TaskDefinition> parse(const std::string& text) { return parseTaskDefinition(text, "t.json"); }

// What agent/StateStore does to a definition between two runs of the agent: the canonical
// JSON is embedded in state.json by nlohmann::json and read back through the parser.
Parsed<TaskDefinition> throughStateFile(const TaskDefinition& def) {
  const nlohmann::json entry = {{"sourceFile", def.sourceFile}, {"definition", nlohmann::json::parse(def.canonicalJson)}};
  const nlohmann::json saved = nlohmann::json::parse(entry.dump());
  return parseTaskDefinition(saved["definition"].dump(), saved["sourceFile"].get<std::string>());
}

}  // namespace

TEST_CASE("public ECS daemon definitions parse into values") {
  SECTION("CloudWatch agent: host volumes, read-only mounts, ECS-only fields warned once") {
    auto p = loadTaskDefinitionFile(kData / "ecs/cloudwatch-agent-daemon.json");
    INFO(errorsOf(p));
    REQUIRE(p.ok());
    const auto& d = *p.value;
    CHECK(d.family == "ecs-cwagent-daemon-service");
    CHECK(d.revision == 0);
    REQUIRE(d.volumes.size() == 4);
    CHECK(d.volumes[0].hostSourcePath == "/proc");
    REQUIRE(d.containers.size() == 1);
    CHECK(d.containers[0].mountPoints.size() == 6);
    CHECK(d.containers[0].mountPoints[0].readOnly);
    CHECK(d.containers[0].cpu == 128);
    CHECK(d.containers[0].memory == 256);
    CHECK(d.containers[0].logConfiguration->logDriver == "awslogs");
    CHECK(d.containers[0].logConfiguration->options.at("awslogs-region") == "us-east-1");
    REQUIRE(p.diagnostics.size() == 1);
    CHECK(p.diagnostics[0].severity == Severity::Warning);
    CHECK(p.diagnostics[0].message.find("executionRoleArn") != std::string::npos);
  }
  SECTION("Datadog agent: null readOnly, health check durations") {
    auto p = loadTaskDefinitionFile(kData / "ecs/datadog-agent-daemon.json");
    INFO(errorsOf(p));
    REQUIRE(p.ok());
    CHECK(p.diagnostics.empty());
    const auto& c = p.value->containers[0];
    CHECK_FALSE(c.mountPoints[0].readOnly);
    REQUIRE(c.healthCheck);
    CHECK(c.healthCheck->command == std::vector<std::string>{"CMD-SHELL", "agent health"});
    CHECK(c.healthCheck->intervalSeconds == 30);
    CHECK(c.healthCheck->startPeriodSeconds == 15);
    CHECK(c.environment.size() == 2);
    CHECK(p.value->critical);
  }
  SECTION("Fluent Bit (YAML): init container, ECS size strings, host network") {
    auto p = loadTaskDefinitionFile(kData / "ecs/fluent-bit-daemon.yaml");
    INFO(errorsOf(p));
    REQUIRE(p.ok());
    const auto& d = *p.value;
    CHECK(d.revision == 7);
    CHECK(d.cpu == 256);
    CHECK(d.memory == 512);
    CHECK(d.networkMode == NetworkMode::Host);
    CHECK_FALSE(d.containers[0].essential);
    REQUIRE(d.containers[1].dependsOn.size() == 1);
    CHECK(d.containers[1].dependsOn[0].condition == DependencyCondition::Success);
    CHECK(d.containers[1].ulimits[0].softLimit == 65536);
    CHECK(d.containers[1].linuxParameters.initProcessEnabled);
    CHECK(d.containers[1].stopTimeoutSeconds == 20);
    CHECK_FALSE(d.volumes[1].hostSourcePath);
    CHECK_FALSE(d.volumes[1].dockerVolume);
  }
  SECTION("describe-task-definition output: wrapper, nulls, unit strings, awsvpc, secrets, bare health check") {
    auto p = loadTaskDefinitionFile(kData / "ecs/otel-sidecar-describe-output.json");
    INFO(errorsOf(p));
    REQUIRE(p.ok());
    const auto& d = *p.value;
    CHECK(d.family == "otel-sidecar");
    CHECK(d.revision == 5);
    CHECK(d.cpu == 512);
    CHECK(d.memory == 1024);
    CHECK(d.networkMode == NetworkMode::Awsvpc);
    CHECK_FALSE(d.pidMode);
    REQUIRE(d.containers[0].secrets.size() == 1);
    CHECK(d.containers[0].secrets[0].name == "API_TOKEN");
    CHECK(d.containers[1].healthCheck->command == std::vector<std::string>{"CMD", "/healthcheck"});
    CHECK(d.containers[1].logConfiguration->options.empty());
  }
  SECTION("X-Ray daemon: non-critical, udp port, user") {
    auto p = loadTaskDefinitionFile(kData / "ecs/xray-daemon.json");
    REQUIRE(p.ok());
    CHECK_FALSE(p.value->critical);
    CHECK(p.value->containers[0].portMappings[0].protocol == "udp");
    CHECK(p.value->containers[0].user == "1337");
    CHECK(p.value->containers[0].readonlyRootFilesystem);
  }
}

TEST_CASE("broken fixtures report exactly the documented lines") {
  for (const auto& entry : fs::directory_iterator(kData / "broken")) {
    if (entry.path().extension() == ".expected" || entry.path().filename() == "config.yaml") continue;
    fs::path expectedFile = entry.path();
    expectedFile.replace_extension(".expected");
    std::ifstream in(expectedFile);
    REQUIRE(in);
    std::stringstream expected;
    expected << in.rdbuf();

    // Names as the CLI test prints them: relative to the data folder.
    const std::string relative = fs::relative(entry.path(), kData).string();
    std::ifstream src(entry.path());
    std::stringstream text;
    text << src.rdbuf();
    auto p = parseTaskDefinition(text.str(), relative);
    INFO(relative);
    CHECK_FALSE(p.ok());
    CHECK(errorsOf(p) == expected.str());
  }
}

TEST_CASE("rule table: each invalid definition names its field") {
  struct Case {
    const char* what;
    const char* json;
    const char* field;
    const char* message;
  };
  const Case cases[] = {
      {"family missing", R"({"containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "family", "required field is missing"},
      {"family with spaces", R"({"family":"my agent","containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "family", "not a valid family"},
      {"no containers", R"({"family":"f","containerDefinitions":[]})", "containerDefinitions", "at least one container"},
      {"containers not a list", R"({"family":"f","containerDefinitions":{}})", "containerDefinitions", "expected a list, got an object"},
      {"no essential container", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"essential":false}]})", "containerDefinitions", "must be essential"},
      {"unknown network mode", R"({"family":"f","networkMode":"nat","containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "networkMode", "expected host, bridge, none or awsvpc, got \"nat\""},
      {"bad pidMode", R"({"family":"f","pidMode":"shared","containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "pidMode", "expected host or task"},
      {"self dependency", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"dependsOn":[{"containerName":"a","condition":"START"}]}]})", "containerDefinitions[0].dependsOn", "dependency cycle: a -> a"},
      {"bad condition", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64},{"name":"b","image":"i","memory":64,"dependsOn":[{"containerName":"a","condition":"READY"}]}]})", "containerDefinitions[1].dependsOn[0].condition", "expected START, COMPLETE, SUCCESS or HEALTHY"},
      {"mount of unknown volume", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"mountPoints":[{"sourceVolume":"v","containerPath":"/x"}]}]})", "containerDefinitions[0].mountPoints[0].sourceVolume", "no volume named 'v'"},
      {"relative container path", R"({"family":"f","volumes":[{"name":"v"}],"containerDefinitions":[{"name":"a","image":"i","memory":64,"mountPoints":[{"sourceVolume":"v","containerPath":"x"}]}]})", "containerDefinitions[0].mountPoints[0].containerPath", "absolute path"},
      {"relative host path", R"({"family":"f","volumes":[{"name":"v","host":{"sourcePath":"data"}}],"containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "volumes[0].host.sourcePath", "absolute path"},
      {"host and docker volume", R"({"family":"f","volumes":[{"name":"v","host":{"sourcePath":"/d"},"dockerVolumeConfiguration":{"scope":"task"}}],"containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "volumes[0].dockerVolumeConfiguration", "not both"},
      {"bad volume scope", R"({"family":"f","volumes":[{"name":"v","dockerVolumeConfiguration":{"scope":"global"}}],"containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "volumes[0].dockerVolumeConfiguration.scope", "expected task or shared"},
      {"volumesFrom unknown", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"volumesFrom":[{"sourceContainer":"z"}]}]})", "containerDefinitions[0].volumesFrom[0].sourceContainer", "no container named 'z'"},
      {"host port differs in host mode", R"({"family":"f","networkMode":"host","containerDefinitions":[{"name":"a","image":"i","memory":64,"portMappings":[{"containerPort":80,"hostPort":8080}]}]})", "containerDefinitions[0].portMappings[0].hostPort", "must equal containerPort"},
      {"ports with no network", R"({"family":"f","networkMode":"none","containerDefinitions":[{"name":"a","image":"i","memory":64,"portMappings":[{"containerPort":80}]}]})", "containerDefinitions[0].portMappings", "no ports to map"},
      {"port out of range", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"portMappings":[{"containerPort":70000}]}]})", "containerDefinitions[0].portMappings[0].containerPort", "between 1 and 65535"},
      {"bad protocol", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"portMappings":[{"containerPort":80,"protocol":"sctp"}]}]})", "containerDefinitions[0].portMappings[0].protocol", "expected tcp or udp"},
      {"health interval too short", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"healthCheck":{"command":["CMD","true"],"interval":1}}]})", "containerDefinitions[0].healthCheck.interval", "between 5 and 300"},
      {"ulimit soft above hard", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"ulimits":[{"name":"nofile","softLimit":10,"hardLimit":5}]}]})", "containerDefinitions[0].ulimits[0].softLimit", "above hardLimit"},
      {"container memory above the task's", R"({"family":"f","memory":"100","containerDefinitions":[{"name":"a","image":"i","memory":64},{"name":"b","image":"i","memory":128}]})", "containerDefinitions[1].memory", "more than the task's memory"},
      {"task cpu garbage", R"({"family":"f","cpu":"lots","containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "cpu", "expected a number or \"N vCPU\", got \"lots\""},
      {"negative revision", R"({"family":"f","revision":-1,"containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "revision", "must not be negative"},
      {"stop timeout absurd", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"stopTimeout":99999}]})", "containerDefinitions[0].stopTimeout", "between 0 and 3600"},
      {"environment entry without name", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"environment":[{"value":"x"}]}]})", "containerDefinitions[0].environment[0].name", "required field is missing"},
      {"relative environment file", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"environmentFiles":[{"value":"app.env","type":"local"}]}]})", "containerDefinitions[0].environmentFiles[0].value", "absolute local path"},
      {"critical not a bool", R"({"family":"f","critical":"no","containerDefinitions":[{"name":"a","image":"i","memory":64}]})", "critical", "expected true or false"},
      {"restart period too short", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"restartPolicy":{"enabled":true,"restartAttemptPeriod":5}}]})", "containerDefinitions[0].restartPolicy.restartAttemptPeriod", "between 60 and 1800"},
      {"tmpfs without size", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"linuxParameters":{"tmpfs":[{"containerPath":"/t"}]}}]})", "containerDefinitions[0].linuxParameters.tmpfs[0].size", "required field is missing"},
      {"document not an object", R"(["a"])", "(document)", "expected an object"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto p = parse(c.json);
    INFO(errorsOf(p));
    CHECK_FALSE(p.ok());
    CHECK_FALSE(p.value.has_value());
    bool found = false;
    for (const auto& d : p.diagnostics) {
      if (d.severity == Severity::Error && d.field == c.field && d.message.find(c.message) != std::string::npos) found = true;
    }
    CHECK(found);
  }
}

TEST_CASE("every field of a container is read") {
  auto p = parse(R"({"family":"full","revision":9,"cpu":512,"memory":"1 GB","pidMode":"host",
    "volumes":[{"name":"shared","dockerVolumeConfiguration":{"scope":"shared","driver":"local","driverOpts":{"type":"tmpfs"},"labels":{"a":"b"},"autoprovision":true}}],
    "containerDefinitions":[{"name":"main","image":"img:1","essential":true,"command":["run"],"entryPoint":["/bin/sh","-c"],
      "environment":[{"name":"A","value":"1"}],"environmentFiles":[{"value":"/etc/app.env","type":"local"}],
      "cpu":256,"memory":512,"memoryReservation":256,"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}],
      "mountPoints":[{"sourceVolume":"shared","containerPath":"/data","readOnly":true}],"user":"1000:1000","privileged":false,
      "readonlyRootFilesystem":true,"workingDirectory":"/app","stopTimeout":45,"startTimeout":60,
      "healthCheck":{"command":["CMD","true"],"interval":10,"timeout":3,"retries":2,"startPeriod":5},
      "logConfiguration":{"logDriver":"json-file","options":{"max-size":"10m"}},
      "ulimits":[{"name":"nofile","softLimit":1024,"hardLimit":4096}],
      "linuxParameters":{"capabilities":{"add":["NET_ADMIN"],"drop":["MKNOD"]},"initProcessEnabled":true,"tmpfs":[{"containerPath":"/tmp","size":64,"mountOptions":["noexec"]}]},
      "restartPolicy":{"enabled":true,"ignoredExitCodes":[0],"restartAttemptPeriod":60}},
      {"name":"side","image":"img:2","essential":false,"memory":64,"volumesFrom":[{"sourceContainer":"main","readOnly":true}],
       "dependsOn":[{"containerName":"main","condition":"HEALTHY"}]}]})");
  INFO(errorsOf(p));
  REQUIRE(p.ok());
  CHECK(p.diagnostics.empty());
  const auto& d = *p.value;
  CHECK(d.memory == 1024);
  CHECK(d.pidMode == "host");
  CHECK(d.volumes[0].dockerVolume->shared);
  CHECK(d.volumes[0].dockerVolume->autoprovision);
  CHECK(d.volumes[0].dockerVolume->driverOpts.at("type") == "tmpfs");
  const auto& c = d.containers[0];
  CHECK(c.entryPoint == std::vector<std::string>{"/bin/sh", "-c"});
  CHECK(c.environmentFiles == std::vector<std::string>{"/etc/app.env"});
  CHECK(c.portMappings[0].hostPort == 8080);
  CHECK(c.mountPoints[0].readOnly);
  CHECK(c.user == "1000:1000");
  CHECK(c.workingDirectory == "/app");
  CHECK(c.startTimeoutSeconds == 60);
  CHECK(c.healthCheck->retries == 2);
  CHECK(c.linuxParameters.capabilitiesAdd == std::vector<std::string>{"NET_ADMIN"});
  CHECK(c.linuxParameters.tmpfs[0].sizeMiB == 64);
  CHECK(c.restartPolicy.enabled);
  CHECK(c.restartPolicy.ignoredExitCodes == std::vector<int>{0});
  CHECK(d.containers[1].volumesFrom[0].sourceContainer == "main");
  CHECK(d.containers[1].dependsOn[0].condition == DependencyCondition::Healthy);
}

TEST_CASE("the hash identifies content, not formatting") {
  auto a = parse(R"({"family":"f","revision":1,"containerDefinitions":[{"name":"a","image":"i","memory":64}]})");
  auto b = parseTaskDefinition("containerDefinitions:\n  - {memory: 64, image: i, name: a}\nrevision: 1\nfamily: f\n", "b.yaml");
  auto c = parse(R"({"family":"f","revision":1,"containerDefinitions":[{"name":"a","image":"i","memory":65}]})");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  CHECK(a.value->hash.size() == 12);
  CHECK(a.value->hash == b.value->hash);
  CHECK(a.value->hash != c.value->hash);
  CHECK(a.value->canonicalJson == R"({"containerDefinitions":[{"image":"i","memory":64,"name":"a"}],"family":"f","revision":1})");
}

TEST_CASE("numbers written as strings are refused where ECS wants numbers") {
  auto p = parseTaskDefinition("family: f\ncontainerDefinitions:\n  - {name: a, image: i, memory: \"64\"}\n", "q.yaml");
  CHECK_FALSE(p.ok());
  REQUIRE_FALSE(p.diagnostics.empty());
  CHECK(p.diagnostics[0].format() == "q.yaml:3:33: field 'containerDefinitions[0].memory': expected a number, got \"64\"");
}

TEST_CASE("bytes that are not UTF-8 are refused where they are, before any field is read") {
  const std::string yaml = "family: f\ncontainerDefinitions:\n  - {name: a, image: i, memory: 64,\n     environment: [{name: V, value: caf\xE9}]}\n";
  auto y = parseTaskDefinition(yaml, "t.yaml");
  CHECK_FALSE(y.ok());
  CHECK(errorsOf(y) == "t.yaml:4:40: invalid UTF-8 (byte 0xE9): only UTF-8 text is accepted\n");

  auto j = parse("{\"family\":\"f\",\n\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"command\":[\"\xC3\xA9\", \"\xE9t\xE9\"]}]}");
  CHECK_FALSE(j.ok());
  CHECK(errorsOf(j) == "t.json:2:67: invalid UTF-8 (byte 0xE9): only UTF-8 text is accepted\n");

  // Sequences a lenient decoder lets through and json::dump() later throws on.
  const std::pair<const char*, const char*> sequences[] = {
      {"\xC0\xAF", "0xC0"},          // overlong '/'
      {"\xE0\x80\xAF", "0xE0"},      // overlong, three bytes
      {"\xED\xA0\x80", "0xED"},      // UTF-16 surrogate
      {"\xF4\x90\x80\x80", "0xF4"},  // past U+10FFFF
      {"\xF8\x88\x80\x80\x80", "0xF8"},
      {"\x80", "0x80"},              // continuation with no lead
      {"\xE2\x82", "0xE2"},          // cut short by the closing quote
  };
  for (const auto& [bytes, first] : sequences) {
    INFO(first);
    auto p = parse(std::string(R"({"family":"f","containerDefinitions":[{"name":"a","image":")") + bytes + R"("}]})");
    CHECK_FALSE(p.ok());
    CHECK(errorsOf(p) == std::string("t.json:1:60: invalid UTF-8 (byte ") + first + "): only UTF-8 text is accepted\n");
  }
  auto truncated = parseTaskDefinition("family: f\xE2\x82", "t.yaml");
  CHECK(errorsOf(truncated) == "t.yaml:1:10: invalid UTF-8 (byte 0xE2): only UTF-8 text is accepted\n");

  // Every well-formed width still passes, and its hash does not depend on a lossy dump.
  auto ok = parse("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"memory\":64,"
                  "\"command\":[\"\xC3\xA9\",\"\xE2\x82\xAC\",\"\xF0\x9F\x98\x80\",\"\xEF\xBF\xBF\"]}]}");
  INFO(errorsOf(ok));
  REQUIRE(ok.ok());
  CHECK(ok.value->containers[0].command == std::vector<std::string>{"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xEF\xBF\xBF"});
  CHECK(ok.value->canonicalJson.find("\xF0\x9F\x98\x80") != std::string::npos);
}

TEST_CASE("a .json definition is strict JSON while the same text as .yaml is YAML") {
  struct Case {
    const char* what;
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"trailing comma in a list", "{\"family\":\"f\",\n \"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"},]}",
       "t.json:2:50: invalid JSON: trailing comma before ']'"},
      {"trailing comma in an object", "{\"family\":\"f\",\n \"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\n }]}",
       "t.json:2:49: invalid JSON: trailing comma before '}'"},
      {"comment", "# a comment\n{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
       "t.json:1:1: invalid JSON: invalid literal; last read: '#'"},
      {"unquoted key", "{family: \"f\", \"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
       "t.json:1:4: invalid JSON: invalid literal; last read: '{fam'; expected string literal"},
      {"single quotes", "{'family': 'f', \"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
       "t.json:1:2: invalid JSON: invalid literal; last read: '{''; expected string literal"},
      {"block YAML", "family: f\ncontainerDefinitions:\n  - {name: a, image: i}\n",
       "t.json:1:3: invalid JSON: invalid literal; last read: 'fam'"},
      {"two documents", "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}\n{}",
       "t.json:2:1: invalid JSON: unexpected '{'; expected end of input"},
      {"empty file", "", "t.json:1:1: invalid JSON: unexpected end of input; expected '[', '{', or a literal"},
      // nlohmann reports this as out_of_range, not parse_error: it once ended the agent.
      {"number past a double", "{\"family\":\"f\",\n \"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"memory\":7e900}]}",
       "t.json:2:59: invalid JSON: number 7e900 is out of range"},
      {"number past a double, its text also in a string before it",
       "{\"family\":\"7e900\",\n \"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"memory\":7e900}]}",
       "t.json:2:59: invalid JSON: number 7e900 is out of range"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto p = parse(c.text);
    CHECK_FALSE(p.ok());
    CHECK(errorsOf(p) == std::string(c.error) + "\n");
  }
  // YAML flow syntax allows what JSON does not: the extension decides, not the content.
  auto yaml = parseTaskDefinition(cases[0].text, "t.yaml");
  INFO(errorsOf(yaml));
  CHECK(yaml.ok());
}

TEST_CASE("valid JSON that yaml-cpp alone would misread") {
  // A surrogate pair is how JSON escapes characters past U+FFFF (Python's json.dumps does
  // it by default); yaml-cpp refuses it as "invalid unicode".
  auto ok = parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"command":["\ud83d\ude00 \u00e9\/", "\uD83D\uDE00"]}]})");
  INFO(errorsOf(ok));
  REQUIRE(ok.ok());
  CHECK(ok.value->containers[0].command == std::vector<std::string>{"\xF0\x9F\x98\x80 \xC3\xA9/", "\xF0\x9F\x98\x80"});
  // A lone surrogate is no character at all.
  auto lone = parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","command":["\ud83d"]}]})");
  CHECK_FALSE(lone.ok());
  CHECK(errorsOf(lone).rfind("t.json:1:", 0) == 0);
}

TEST_CASE("valid JSON with wrong fields is still positioned by field") {
  auto p = parse("{\n  \"family\": \"f\",\n  \"containerDefinitions\": [{\"name\": \"a\", \"image\": \"i\", \"memory\": \"\\u0036\\u0034\"}]\n}");
  CHECK(errorsOf(p) == "t.json:3:66: field 'containerDefinitions[0].memory': expected a number, got \"64\"\n");
}

TEST_CASE("plain YAML scalars keep their source text through the state file too") {
  const char* yaml = R"(family: f
containerDefinitions:
  - name: a
    image: i
    memory: +064
    essential: True
    user: 0100
    command: [run, 1.20, 007, 1e3, True, -0, 99999999999999999999, 5, 0.5, 10.0]
    environment: [{name: V, value: 1.20}, {name: N, value: 12}]
    logConfiguration: {logDriver: json-file, options: {max-size: 1.50}}
    healthCheck: {command: [CMD, check, 2.0], retries: 03}
volumes:
  - name: v
    dockerVolumeConfiguration: {labels: {version: 1.10}, driverOpts: {o: 0x10}}
)";
  const std::vector<std::string> command = {"run", "1.20", "007", "1e3", "True", "-0", "99999999999999999999", "5", "0.5", "10.0"};
  for (const char* source : {"/defs/t.yaml", "/defs/t.json"}) {
    INFO(source);
    auto first = parseTaskDefinition(yaml, "t.yaml");
    INFO(errorsOf(first));
    REQUIRE(first.ok());
    first.value->sourceFile = source;  // a .json source is re-read as strict JSON
    auto again = throughStateFile(*first.value);
    INFO(errorsOf(again));
    REQUIRE(again.ok());
    for (const auto* d : {&*first.value, &*again.value}) {
      const auto& c = d->containers[0];
      CHECK(c.environment[0].value == "1.20");
      CHECK(c.environment[1].value == "12");
      CHECK(c.command == command);
      CHECK(c.user == "0100");
      CHECK(c.memory == 64);
      CHECK(c.essential);
      CHECK(c.logConfiguration->options.at("max-size") == "1.50");
      CHECK(c.healthCheck->command == std::vector<std::string>{"CMD", "check", "2.0"});
      CHECK(c.healthCheck->retries == 3);
      CHECK(d->volumes[0].dockerVolume->labels.at("version") == "1.10");
      CHECK(d->volumes[0].dockerVolume->driverOpts.at("o") == "0x10");
    }
    CHECK(again.value->canonicalJson == first.value->canonicalJson);
    CHECK(again.value->hash == first.value->hash);  // the same revision, not a rollout
  }
}

TEST_CASE("definitions without re-rendered scalars keep the hash they always had") {
  // Changing these would recreate every running container on upgrade.
  auto p = parseTaskDefinition("family: f\ncontainerDefinitions:\n  - {name: a, image: i, memory: 64, essential: true, command: [x, 5, 0.5, true]}\n", "t.yaml");
  REQUIRE(p.ok());
  CHECK(p.value->canonicalJson == R"({"containerDefinitions":[{"command":["x",5,0.5,true],"essential":true,"image":"i","memory":64,"name":"a"}],"family":"f"})");
}

namespace {

bool hasDiagnostic(const Parsed<TaskDefinition>& p, Severity severity, const std::string& field, const std::string& message) {
  return std::any_of(p.diagnostics.begin(), p.diagnostics.end(), [&](const Diagnostic& d) {
    return d.severity == severity && d.field == field && d.message.find(message) != std::string::npos;
  });
}

}  // namespace

TEST_CASE("a key written twice in one mapping is an error at the second one") {
  // yaml-cpp keeps both: the reader took the first and canonicalJson the last, so state.json
  // could say something other than what ran.
  auto j = parse("{\"family\":\"f\",\n \"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"essential\":true,\n   \"essential\":false,\"memory\":64}]}");
  CHECK_FALSE(j.ok());
  CHECK(errorsOf(j) == "t.json:3:4: field 'containerDefinitions[0].essential': duplicate key 'essential' (first at line 2, column 50): remove one\n");

  auto y = parseTaskDefinition("family: f\ncontainerDefinitions:\n  - {name: a, image: i, memory: 64}\nfamily: g\n", "t.yaml");
  CHECK_FALSE(y.ok());
  CHECK(errorsOf(y) == "t.yaml:4:1: field 'family': duplicate key 'family' (first at line 1, column 1): remove one\n");

  // Nested and in lists too; every duplicate is reported, not only the first.
  auto deep = parseTaskDefinition("family: f\ncontainerDefinitions:\n  - name: a\n    image: i\n    logConfiguration: {logDriver: x, options: {k: 1, k: 2}}\n    name: b\n", "t.yaml");
  CHECK_FALSE(deep.ok());
  CHECK(hasDiagnostic(deep, Severity::Error, "containerDefinitions[0].logConfiguration.options.k", "duplicate key 'k'"));
  CHECK(hasDiagnostic(deep, Severity::Error, "containerDefinitions[0].name", "duplicate key 'name'"));

  // The same key in two different mappings is no duplicate.
  auto ok = parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64},{"name":"b","image":"i","memory":64}]})");
  CHECK(ok.ok());
}

TEST_CASE("describe-task-definition and register-task-definition output is unwrapped") {
  auto p = parse(R"({"taskDefinition":{"family":"web","revision":4,"status":"ACTIVE","containerDefinitions":[{"name":"a","image":"nginx","memory":128}]},"tags":[{"key":"team","value":"x"}]})");
  INFO(errorsOf(p));
  REQUIRE(p.ok());
  CHECK(p.value->family == "web");
  CHECK(p.value->revision == 4);
  // The identity is the definition, not its envelope: unwrapping by hand is not a rollout.
  auto bare = parse(R"({"family":"web","revision":4,"status":"ACTIVE","containerDefinitions":[{"name":"a","image":"nginx","memory":128}]})");
  REQUIRE(bare.ok());
  CHECK(p.value->hash == bare.value->hash);
  // Field paths and positions still point into the file as written.
  auto bad = parse("{\"taskDefinition\": {\"family\": \"f\",\n\"containerDefinitions\": [{\"name\": \"a\", \"image\": \"i\", \"memory\": \"x\"}]}}");
  CHECK(errorsOf(bad) == "t.json:2:64: field 'taskDefinition.containerDefinitions[0].memory': expected a number, got \"x\"\n");
  // Anything else beside the wrapper is a warning, as elsewhere; a wrapper that is not an object is an error.
  auto odd = parse(R"({"taskDefinition":{"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64}]},"nextToken":"x"})");
  CHECK(odd.ok());
  CHECK(hasDiagnostic(odd, Severity::Warning, "nextToken", "unknown field"));
  CHECK(hasDiagnostic(parse(R"({"taskDefinition":[]})"), Severity::Error, "taskDefinition", "expected an object"));
}

TEST_CASE("null is the same as an absent field everywhere") {
  // Older AWS CLI output writes every unset field as null.
  auto p = parse(R"({"family":"f","cpu":null,"memory":null,"pidMode":null,"ipcMode":null,"networkMode":null,"taskRoleArn":null,
    "volumes":[{"name":"v","host":{"sourcePath":"/"},"dockerVolumeConfiguration":null,"efsVolumeConfiguration":null,"fsxWindowsFileServerVolumeConfiguration":null}],
    "containerDefinitions":[{"name":"a","image":"i","memory":null,"memoryReservation":64,"essential":null,"command":null,"links":null,
      "healthCheck":null,"logConfiguration":{"logDriver":"json-file","secretOptions":null,"options":null},"linuxParameters":null,
      "mountPoints":[{"sourceVolume":"v","containerPath":"/h","readOnly":null}],"secrets":null,"dependsOn":null,"user":null,"ulimits":null}]})");
  INFO(errorsOf(p));
  REQUIRE(p.ok());
  CHECK(p.diagnostics.empty());  // an absent field draws no warning, so neither does a null one
  const auto& d = *p.value;
  CHECK_FALSE(d.cpu);
  CHECK_FALSE(d.memory);
  CHECK(d.networkMode == NetworkMode::Bridge);
  CHECK(d.volumes[0].hostSourcePath == "/");
  CHECK_FALSE(d.volumes[0].dockerVolume);
  CHECK(d.containers[0].essential);
  CHECK_FALSE(d.containers[0].memory);
  CHECK_FALSE(d.containers[0].healthCheck);
  CHECK(d.containers[0].logConfiguration->options.empty());

  // A required field given as null is missing, not silently empty.
  auto missing = parse(R"({"family":null,"containerDefinitions":[{"name":null,"image":"i","memory":64}]})");
  CHECK(hasDiagnostic(missing, Severity::Error, "family", "required field is missing"));
  CHECK(hasDiagnostic(missing, Severity::Error, "containerDefinitions[0].name", "required field is missing"));
  CHECK(hasDiagnostic(parse(R"({"family":"f","containerDefinitions":null})"), Severity::Error, "containerDefinitions", "required field is missing"));
}

TEST_CASE("a health check command without CMD or CMD-SHELL runs as CMD, with a warning") {
  auto p = parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"healthCheck":{"command":["/healthcheck","--quick"]}}]})");
  INFO(errorsOf(p));
  REQUIRE(p.ok());
  CHECK(p.value->containers[0].healthCheck->command == std::vector<std::string>{"CMD", "/healthcheck", "--quick"});
  CHECK(hasDiagnostic(p, Severity::Warning, "containerDefinitions[0].healthCheck.command", "runs as [\"CMD\", \"/healthcheck\", \"--quick\"]"));
  CHECK(hasDiagnostic(parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","healthCheck":{"command":[]}}]})"),
                      Severity::Error, "containerDefinitions[0].healthCheck.command", "names no command to run"));
  CHECK(hasDiagnostic(parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","healthCheck":{"command":["CMD-SHELL"]}}]})"),
                      Severity::Error, "containerDefinitions[0].healthCheck.command", "names no command to run"));
}

TEST_CASE("task cpu and memory take ECS unit strings") {
  struct Case {
    const char* cpu;
    const char* memory;
    std::int64_t cpuUnits;
    std::int64_t memoryMiB;
  };
  const Case cases[] = {
      {"\"1 vCPU\"", "\"2 GB\"", 1024, 2048},
      {"\"1 vcpu\"", "\"2 gb\"", 1024, 2048},
      {"\".25 vcpu\"", "\".5 gb\"", 256, 512},
      {"\"0.5 vCPU\"", "\"0.5GB\"", 512, 512},
      {"\"4vcpu\"", "\"30 GB\"", 4096, 30720},
      {"\"256\"", "\"512\"", 256, 512},
      {"2048", "4096", 2048, 4096},
  };
  for (const auto& c : cases) {
    INFO(c.cpu << " " << c.memory);
    auto p = parse(std::string(R"({"family":"f","cpu":)") + c.cpu + R"(,"memory":)" + c.memory +
                   R"(,"containerDefinitions":[{"name":"a","image":"i"}]})");
    INFO(errorsOf(p));
    REQUIRE(p.ok());
    CHECK(p.value->cpu == c.cpuUnits);
    CHECK(p.value->memory == c.memoryMiB);
  }
  for (const char* bad : {"\"1 GB\"", "\"vcpu\"", "\"1.2.3 vcpu\"", "\"-1 vcpu\"", "\"0.0001 vcpu\""}) {
    INFO(bad);
    CHECK_FALSE(parse(std::string(R"({"family":"f","cpu":)") + bad + R"(,"containerDefinitions":[{"name":"a","image":"i"}]})").ok());
  }
  CHECK(hasDiagnostic(parse(R"({"family":"f","memory":"1 vcpu","containerDefinitions":[{"name":"a","image":"i"}]})"),
                      Severity::Error, "memory", "expected a number or \"N GB\""));
}

TEST_CASE("memory follows ECS: each container fits in the task, the sum may not") {
  // prometheus-grafana in the corpus: task 512 MiB, containers limited to 256 + 512 + 512 and
  // reserving 128 + 256 + 128.
  auto sum = parse(R"({"family":"f","memory":"512","containerDefinitions":[{"name":"a","image":"i","memory":256,"memoryReservation":128,"essential":false},
    {"name":"b","image":"i","memory":512,"memoryReservation":256},{"name":"c","image":"i","memory":512,"memoryReservation":128}]})");
  INFO(errorsOf(sum));
  CHECK(sum.ok());
  auto one = parse(R"({"family":"f","memory":"512","containerDefinitions":[{"name":"a","image":"i","memory":64},{"name":"b","image":"i","memory":1024}]})");
  CHECK_FALSE(one.ok());
  CHECK(hasDiagnostic(one, Severity::Error, "containerDefinitions[1].memory", "1024 MiB is more than the task's memory (512 MiB)"));
  auto reservation = parse(R"({"family":"f","memory":"512","containerDefinitions":[{"name":"a","image":"i","memoryReservation":600}]})");
  CHECK(hasDiagnostic(reservation, Severity::Error, "containerDefinitions[0].memoryReservation", "600 MiB is more than the task's memory (512 MiB)"));
  // What ECS does add up is what containers reserve: memoryReservation (else memory) and cpu.
  auto reserved = parse(R"({"family":"f","memory":"512","containerDefinitions":[{"name":"a","image":"i","memory":512,"memoryReservation":300},{"name":"b","image":"i","memory":300}]})");
  CHECK(hasDiagnostic(reserved, Severity::Error, "memory", "512 MiB is less than the containers reserve together (600 MiB"));
  auto cpu = parse(R"({"family":"f","cpu":"256","containerDefinitions":[{"name":"a","image":"i","cpu":200},{"name":"b","image":"i","cpu":100}]})");
  CHECK(hasDiagnostic(cpu, Severity::Error, "cpu", "256 CPU units is less than the containers reserve together (300)"));
}

TEST_CASE("networkMode awsvpc is accepted") {
  auto p = parse(R"({"family":"f","networkMode":"awsvpc","containerDefinitions":[{"name":"a","image":"i","memory":64,"portMappings":[{"containerPort":8080}]}]})");
  INFO(errorsOf(p));
  REQUIRE(p.ok());
  CHECK(p.value->networkMode == NetworkMode::Awsvpc);
  CHECK(std::string(toString(NetworkMode::Awsvpc)) == "awsvpc");
  // As on ECS, a host port given under awsvpc must be the container port.
  auto port = parse(R"({"family":"f","networkMode":"awsvpc","containerDefinitions":[{"name":"a","image":"i","memory":64,"portMappings":[{"containerPort":80,"hostPort":8080}]}]})");
  CHECK(hasDiagnostic(port, Severity::Error, "containerDefinitions[0].portMappings[0].hostPort", "with networkMode awsvpc, hostPort must equal containerPort (80)"));
  CHECK(hasDiagnostic(parse(R"({"family":"f","networkMode":"nat","containerDefinitions":[{"name":"a","image":"i"}]})"),
                      Severity::Error, "networkMode", "expected host, bridge, none or awsvpc, got \"nat\""));
}

TEST_CASE("secrets and logConfiguration.secretOptions are read into the model") {
  auto p = parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,
    "secrets":[{"name":"DB_URL","valueFrom":"arn:aws:secretsmanager:eu-west-1:1:secret:db-AbC:url::"},{"name":"TOKEN","valueFrom":"gokabot.TOKEN"}],
    "logConfiguration":{"logDriver":"awsfirelens","options":{"Name":"newrelic"},"secretOptions":[{"name":"apiKey","valueFrom":"arn:aws:ssm:r:1:parameter/nr/key"}]}}]})");
  INFO(errorsOf(p));
  REQUIRE(p.ok());
  // Resolved by the agent when the task starts: nothing to warn about.
  CHECK(p.diagnostics.empty());
  const auto& c = p.value->containers[0];
  REQUIRE(c.secrets.size() == 2);
  CHECK(c.secrets[0].name == "DB_URL");
  CHECK(c.secrets[0].valueFrom == "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbC:url::");
  CHECK(c.secrets[1].valueFrom == "gokabot.TOKEN");
  REQUIRE(c.logConfiguration->secretOptions.size() == 1);
  CHECK(c.logConfiguration->secretOptions[0].name == "apiKey");

  CHECK(hasDiagnostic(parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","secrets":[{"name":"X"}]}]})"),
                      Severity::Error, "containerDefinitions[0].secrets[0].valueFrom", "required field is missing"));
  CHECK(hasDiagnostic(parse(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","logConfiguration":{"logDriver":"x","secretOptions":[{"valueFrom":"v"}]}}]})"),
                      Severity::Error, "containerDefinitions[0].logConfiguration.secretOptions[0].name", "required field is missing"));
}

TEST_CASE("fields whose omission would change data or security are errors that say why") {
  struct Case {
    const char* what;
    const char* json;
    const char* field;
    const char* message;
  };
  const Case cases[] = {
      {"EFS volume", R"({"family":"f","volumes":[{"name":"v","efsVolumeConfiguration":{"fileSystemId":"fs-1"}}],"containerDefinitions":[{"name":"a","image":"i"}]})",
       "volumes[0].efsVolumeConfiguration", "the application would write to an empty local volume instead of the EFS file system"},
      {"FSx volume", R"({"family":"f","volumes":[{"name":"v","fsxWindowsFileServerVolumeConfiguration":{"fileSystemId":"fs-1"}}],"containerDefinitions":[{"name":"a","image":"i"}]})",
       "volumes[0].fsxWindowsFileServerVolumeConfiguration", "instead of the FSx file system"},
      {"volume configured at launch", R"({"family":"f","volumes":[{"name":"v","configuredAtLaunch":true}],"containerDefinitions":[{"name":"a","image":"i"}]})",
       "volumes[0].configuredAtLaunch", "nothing here configures it at launch"},
      {"security options", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","dockerSecurityOptions":["no-new-privileges"]}]})",
       "containerDefinitions[0].dockerSecurityOptions", "would run with weaker confinement than declared"},
      {"networking disabled", R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","disableNetworking":true}]})",
       "containerDefinitions[0].disableNetworking", "would have a network"},
      {"Windows task", R"({"family":"f","runtimePlatform":{"operatingSystemFamily":"WINDOWS_SERVER_2019_CORE"},"containerDefinitions":[{"name":"a","image":"i"}]})",
       "runtimePlatform.operatingSystemFamily", "needs a Windows host"},
      {"App Mesh proxy", R"({"family":"f","proxyConfiguration":{"type":"APPMESH","containerName":"envoy"},"containerDefinitions":[{"name":"a","image":"i"}]})",
       "proxyConfiguration", "traffic would bypass the proxy"},
      {"placement constraints", R"({"family":"f","placementConstraints":[{"type":"memberOf","expression":"attribute:x == y"}],"containerDefinitions":[{"name":"a","image":"i"}]})",
       "placementConstraints", "would run on a host it excludes"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto p = parse(c.json);
    INFO(errorsOf(p));
    CHECK_FALSE(p.ok());
    CHECK(hasDiagnostic(p, Severity::Error, c.field, c.message));
  }
  // Empty or off forms of the same fields change nothing and pass, as describe output writes them.
  auto harmless = parse(R"({"family":"f","placementConstraints":[],"proxyConfiguration":null,"volumes":[{"name":"v","configuredAtLaunch":false}],
    "containerDefinitions":[{"name":"a","image":"i","dockerSecurityOptions":[],"systemControls":[],"disableNetworking":false,"resourceRequirements":[],
      "linuxParameters":{"devices":[]}}]})");
  INFO(errorsOf(harmless));
  CHECK(harmless.ok());
  // What only makes the task fail loudly, or run with less, stays a warning.
  auto loud = parse(R"({"family":"f","runtimePlatform":{"operatingSystemFamily":"LINUX"},"containerDefinitions":[{"name":"a","image":"i",
    "repositoryCredentials":{"credentialsParameter":"arn:x"},"systemControls":[{"namespace":"net.core.somaxconn","value":"1024"}],
    "resourceRequirements":[{"type":"GPU","value":"1"}],"linuxParameters":{"devices":[{"hostPath":"/dev/fuse"}]}}]})");
  INFO(errorsOf(loud));
  CHECK(loud.ok());
  CHECK(hasDiagnostic(loud, Severity::Warning, "containerDefinitions[0]", "repositoryCredentials"));
  CHECK(hasDiagnostic(loud, Severity::Warning, "containerDefinitions[0].linuxParameters", "devices"));
}

TEST_CASE("an image reference Docker would refuse is an error at validate time") {
  for (const char* image : {"<IMAGE1_NAME>", "${ecr_repository_url}:latest", "katsubushi/katsubushi:{{ env `TAG` `latest` }}", "Nginx", "nginx:", "a b"}) {
    INFO(image);
    nlohmann::json doc = {{"family", "f"}, {"containerDefinitions", {{{"name", "a"}, {"image", image}}}}};
    auto p = parse(doc.dump());
    CHECK(hasDiagnostic(p, Severity::Error, "containerDefinitions[0].image", "is not an image reference Docker accepts"));
  }
  for (const char* image : {"nginx", "nginx:1.25-alpine", "public.ecr.aws/nginx/nginx:latest", "127.0.0.1:51670/busybox:latest",
                            "quay.io/signalfx/splunk-otel-collector:latest", "my-app:latest", "localhost:5000/a/b_c/d__e:tag",
                            "busybox@sha256:0123456789012345678901234567890123456789012345678901234567890123",
                            "381491829424.dkr.ecr.us-east-1.amazonaws.com/piterbog:v10.latest"}) {
    INFO(image);
    nlohmann::json doc = {{"family", "f"}, {"containerDefinitions", {{{"name", "a"}, {"image", image}}}}};
    auto p = parse(doc.dump());
    INFO(errorsOf(p));
    CHECK(p.ok());
  }
}

TEST_CASE("ECS fields ECS itself would refuse in a type are still checked where they are ignored") {
  // tags must be [{key, value}]: a map there is how a template fills the wrong shape.
  auto p = parse(R"({"family":"f","tags":{"Project":"x"},"containerDefinitions":[{"name":"a","image":"i"}]})");
  CHECK(hasDiagnostic(p, Severity::Error, "tags", "expected a list"));
}

TEST_CASE("a bare containerDefinitions list in a file takes its family from the file name") {
  const std::string list = R"([{"name":"web","image":"nginx:1.25","memory":64,"portMappings":[{"containerPort":80,"hostPort":80}]}])";
  auto p = parseTaskDefinition(list, "/etc/daemonlet/definitions/tasks/buildkite-ecs.oidc_example.json");
  INFO(errorsOf(p));
  REQUIRE(p.ok());
  CHECK(p.value->family == "buildkite-ecs-oidc_example");  // '.' may not be in a family
  REQUIRE(p.value->containers.size() == 1);
  CHECK(p.value->containers[0].image == "nginx:1.25");
  CHECK(hasDiagnostic(p, Severity::Warning, "(document)", "family 'buildkite-ecs-oidc_example', from the file name"));
  // state.json keeps the canonical form, which reads back as the same revision.
  auto again = throughStateFile(*p.value);
  REQUIRE(again.ok());
  CHECK(again.value->hash == p.value->hash);
  CHECK(again.value->family == p.value->family);
  // Without a file name to take a family from (a list inside another document), it is an error.
  CHECK(hasDiagnostic(parseTaskDefinition(list, "(control endpoint)"), Severity::Error, "(document)", "bare containerDefinitions list"));
}
