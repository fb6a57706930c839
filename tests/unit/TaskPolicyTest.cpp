// taskPolicy (DESIGN 3.2): what application tasks may ask for, decided in pure code.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "config/AgentConfig.h"
#include "config/TaskDefinitionParser.h"
#include "config/TaskPolicy.h"

using namespace daemonlet::config;
namespace fs = std::filesystem;

namespace {

TaskDefinition definition(const std::string& json) {
  auto p = parseTaskDefinition(json, "t.json");
  INFO(json);
  REQUIRE(p.ok());
  return *p.value;
}

std::string fields(const std::vector<PolicyRefusal>& refusals) {
  std::string out;
  for (const auto& r : refusals) out += (out.empty() ? "" : " ") + r.field;
  return out;
}

TaskPolicy lockedDown() {
  TaskPolicy p;
  p.allowPrivileged = false;
  p.allowHostNetwork = false;
  p.allowHostPid = false;
  p.allowedCapabilities = {"NET_BIND_SERVICE"};
  p.hostPathRoots = {"/srv/apps"};
  return p;
}

const char* kEverything = R"({"family":"f","networkMode":"host","pidMode":"host",
  "volumes":[{"name":"logs","host":{"sourcePath":"/srv/apps/web/logs"}},{"name":"root","host":{"sourcePath":"/"}}],
  "containerDefinitions":[{"name":"a","image":"i","memory":32,"privileged":true,
    "environmentFiles":[{"value":"/etc/daemonlet/env/web.env","type":"local"}],
    "linuxParameters":{"capabilities":{"add":["NET_BIND_SERVICE","SYS_ADMIN","cap_net_raw"]}}}]})";

}  // namespace

TEST_CASE("taskPolicy: the defaults accept what ECS accepts, host paths and privileges included") {
  auto def = definition(R"({"family":"f","networkMode":"host","pidMode":"host",
    "volumes":[{"name":"root","host":{"sourcePath":"/"}}],
    "containerDefinitions":[{"name":"a","image":"i","memory":32,"privileged":true,
      "linuxParameters":{"capabilities":{"add":["ALL"]}}}]})");
  CHECK(checkTaskPolicy(TaskPolicy{}, def).empty());
}

TEST_CASE("taskPolicy: by default environmentFiles only below /etc/daemonlet") {
  auto ok = definition(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":32,
    "environmentFiles":[{"value":"/etc/daemonlet/env/web.env","type":"local"}]}]})");
  CHECK(checkTaskPolicy(TaskPolicy{}, ok).empty());

  for (const char* path : {"/etc/shadow", "/etc/daemonlet/../shadow", "/etc/daemonlet-other/x.env", "/root/.aws/credentials"}) {
    INFO(path);
    auto bad = definition(std::string(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":32,"environmentFiles":[{"value":")") +
                          path + R"(","type":"local"}]}]})");
    auto refusals = checkTaskPolicy(TaskPolicy{}, bad);
    REQUIRE(refusals.size() == 1);
    CHECK(refusals[0].field == "containerDefinitions[0].environmentFiles[0]");
    CHECK(refusals[0].format() == std::string("field 'containerDefinitions[0].environmentFiles[0]': ") + path +
                                      " is not below taskPolicy.environmentFileRoots [/etc/daemonlet]");
  }
}

TEST_CASE("taskPolicy: a locked-down policy names every field it refuses, and the key that refuses it") {
  auto refusals = checkTaskPolicy(lockedDown(), definition(kEverything));
  CHECK(fields(refusals) ==
        "networkMode pidMode volumes[1].host.sourcePath containerDefinitions[0].privileged "
        "containerDefinitions[0].linuxParameters.capabilities.add[1] containerDefinitions[0].linuxParameters.capabilities.add[2]");
  CHECK(refusals[0].reason == "host networking is not allowed (taskPolicy.allowHostNetwork is false)");
  CHECK(refusals[1].reason == "the host's PID namespace is not allowed (taskPolicy.allowHostPid is false)");
  CHECK(refusals[2].reason == "host path / is not below taskPolicy.hostPathRoots [/srv/apps]");
  CHECK(refusals[3].reason == "privileged containers are not allowed (taskPolicy.allowPrivileged is false)");
  CHECK(refusals[4].reason == "capability SYS_ADMIN is not in taskPolicy.allowedCapabilities [NET_BIND_SERVICE]");
  CHECK(refusals[5].reason == "capability cap_net_raw is not in taskPolicy.allowedCapabilities [NET_BIND_SERVICE]");
}

TEST_CASE("taskPolicy: capabilities compare without CAP_ and case; [] allows none") {
  auto def = definition(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":32,
    "linuxParameters":{"capabilities":{"add":["CAP_NET_ADMIN"],"drop":["ALL"]}}}]})");
  TaskPolicy p;
  p.allowedCapabilities = {"net_admin"};
  CHECK(checkTaskPolicy(p, def).empty());
  p.allowedCapabilities = {};
  auto refusals = checkTaskPolicy(p, def);
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].reason == "capability CAP_NET_ADMIN is not in taskPolicy.allowedCapabilities [] (none)");
}

TEST_CASE("taskPolicy: paths compare by component, after normalising") {
  CHECK(pathBelowAny("/srv/apps", {"/srv/apps"}));
  CHECK(pathBelowAny("/srv/apps/web/x", {"/srv/apps/"}));
  CHECK(pathBelowAny("/srv/./apps//web", {"/srv/apps"}));
  CHECK(pathBelowAny("/anything", {"/"}));
  CHECK_FALSE(pathBelowAny("/srv/apps-evil", {"/srv/apps"}));
  CHECK_FALSE(pathBelowAny("/srv/apps/../etc", {"/srv/apps"}));
  CHECK_FALSE(pathBelowAny("srv/apps/x", {"/srv/apps"}));
  CHECK_FALSE(pathBelowAny("/srv/apps/x", {}));
  CHECK_FALSE(pathBelowAny("/srv/apps/x", {"srv"}));
}

TEST_CASE("taskPolicy: read from the agent config; lists replace the defaults; bad values name the key") {
  AgentConfig c;
  Diagnostics d;
  applyConfigText(c, R"(taskPolicy:
  allowPrivileged: false
  allowHostNetwork: false
  allowHostPid: false
  allowedCapabilities: [NET_BIND_SERVICE]
  hostPathRoots: [/srv/apps, /var/log/apps]
  environmentFileRoots: [/etc/daemonlet, /srv/env]
)", "config.yaml", d);
  REQUIRE(d.empty());
  CHECK_FALSE(c.taskPolicy.allowPrivileged);
  CHECK_FALSE(c.taskPolicy.allowHostNetwork);
  CHECK_FALSE(c.taskPolicy.allowHostPid);
  CHECK(c.taskPolicy.allowedCapabilities == std::vector<std::string>{"NET_BIND_SERVICE"});
  CHECK(c.taskPolicy.hostPathRoots == std::vector<std::string>{"/srv/apps", "/var/log/apps"});
  CHECK(c.taskPolicy.environmentFileRoots == std::vector<std::string>{"/etc/daemonlet", "/srv/env"});

  AgentConfig bad;
  Diagnostics e;
  applyConfigText(bad, "taskPolicy:\n  hostPathRoots: [srv]\n  allowPriviledged: false\n  environmentFileRoots: /etc\n", "config.yaml", e);
  REQUIRE(e.size() == 3);
  CHECK(e[0].format() == "config.yaml:2:19: field 'taskPolicy.hostPathRoots[0]': must be an absolute path, got \"srv\"");
  CHECK(e[1].field == "taskPolicy.allowPriviledged");
  CHECK(e[1].message == "unknown key");
  CHECK(e[2].format() == "config.yaml:4:25: field 'taskPolicy.environmentFileRoots': expected a list");
  CHECK(bad.taskPolicy.hostPathRoots == std::vector<std::string>{"/"});  // bad input changes nothing
  CHECK(looksLikeAgentConfig("taskPolicy: {allowPrivileged: false}\n"));
}

TEST_CASE("taskPolicy: the defaults refuse no definition of the ECS corpus that names no environment file") {
  const fs::path corpus = fs::path(DAEMONLET_ECS_CORPUS) / "valid";
  int checked = 0;
  for (const auto& e : fs::directory_iterator(corpus)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    auto p = parseTaskDefinition(text.str(), e.path().string());
    if (!p.ok()) continue;  // refused by the parser, for reasons EcsCorpusTest lists
    bool hasEnvFiles = false;
    for (const auto& c : p.value->containers) hasEnvFiles = hasEnvFiles || !c.environmentFiles.empty();
    if (hasEnvFiles) continue;
    INFO(e.path().filename().string());
    CHECK(fields(checkTaskPolicy(TaskPolicy{}, *p.value)).empty());
    ++checked;
  }
  CHECK(checked >= 10);
}
