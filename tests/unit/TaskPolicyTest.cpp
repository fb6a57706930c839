// taskPolicy (DESIGN 3.2): what application tasks may ask for, decided in pure code.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <unistd.h>

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

TEST_CASE("taskPolicy: capabilities compare without CAP_ and case, [] allows none") {
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

TEST_CASE("taskPolicy: read from the agent config, lists replace the defaults, bad values name the key") {
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

TEST_CASE("taskPolicy: a local volume that binds a host directory is checked against hostPathRoots, task-scoped or shared") {
  TaskPolicy p;
  p.hostPathRoots = {"/srv/apps"};
  auto def = definition(R"({"family":"f","volumes":[
    {"name":"root","dockerVolumeConfiguration":{"scope":"task","driver":"local","driverOpts":{"type":"none","o":"bind","device":"/"}}},
    {"name":"ok","dockerVolumeConfiguration":{"scope":"shared","autoprovision":true,"driver":"local","driverOpts":{"type":"none","o":"rbind,ro","device":"/srv/apps/data"}}},
    {"name":"up","dockerVolumeConfiguration":{"scope":"shared","autoprovision":true,"driver":"local","driverOpts":{"o":"bind","device":"/srv/apps/../../etc"}}},
    {"name":"nfs","dockerVolumeConfiguration":{"scope":"task","driver":"local","driverOpts":{"type":"nfs","o":"addr=10.0.0.1","device":":/export"}}}],
    "containerDefinitions":[{"name":"a","image":"i","memory":32}]})");
  const auto refused = checkTaskPolicy(p, def);
  CHECK(fields(refused) == "volumes[0].dockerVolumeConfiguration.driverOpts.device volumes[2].dockerVolumeConfiguration.driverOpts.device");
  REQUIRE(!refused.empty());
  CHECK(refused[0].format() ==
        "field 'volumes[0].dockerVolumeConfiguration.driverOpts.device': the local driver binds host path / which is not below taskPolicy.hostPathRoots [/srv/apps]");
  CHECK(checkTaskPolicy(TaskPolicy{}, def).empty());  // the default root / allows it, as ECS does
}

TEST_CASE("taskPolicy: on the host, paths are compared after following symbolic links") {
  const fs::path top = fs::temp_directory_path() / ("dl-policy-" + std::to_string(::getpid()));
  fs::remove_all(top);
  fs::create_directories(top / "allowed");
  fs::create_directories(top / "outside");
  { std::ofstream(top / "outside" / "secret.env") << "A=1\n"; }
  fs::create_symlink(top / "outside", top / "allowed" / "link");
  TaskPolicy p;
  p.hostPathRoots = {(top / "allowed").string()};
  p.environmentFileRoots = {(top / "allowed").string()};
  auto def = definition(R"({"family":"f","volumes":[{"name":"v","host":{"sourcePath":")" + (top / "allowed/link").string() + R"("}},
      {"name":"w","host":{"sourcePath":")" + (top / "allowed/link/not/yet").string() + R"("}}],
    "containerDefinitions":[{"name":"a","image":"i","memory":32,
      "environmentFiles":[{"value":")" + (top / "allowed/link/secret.env").string() + R"(","type":"local"}]}]})");
  CHECK(checkTaskPolicy(p, def).empty());  // lexically below the root: the reconciler's view
  const auto refused = checkTaskPolicy(p, def, PathResolution::OnHost);
  CHECK(fields(refused) == "volumes[0].host.sourcePath volumes[1].host.sourcePath containerDefinitions[0].environmentFiles[0]");
  REQUIRE(refused.size() == 3);
  CHECK(refused[0].reason.find("resolves to " + (top / "outside").string()) != std::string::npos);
  // A real directory under the root passes on the host as well.
  fs::create_directories(top / "allowed" / "real");
  auto fine = definition(R"({"family":"f","volumes":[{"name":"v","host":{"sourcePath":")" + (top / "allowed/real/missing").string() + R"("}}],
    "containerDefinitions":[{"name":"a","image":"i","memory":32}]})");
  CHECK(checkTaskPolicy(p, fine, PathResolution::OnHost).empty());
  fs::remove_all(top);
}

TEST_CASE("taskPolicy: environmentFiles never read the secrets directory or a token or key file, unless a root names them") {
  AgentConfig c;
  Diagnostics d;
  applyConfigText(c, "source: {type: http, url: 'https://ctl.example/v1', tokenFile: /etc/daemonlet/token, clientKeyFile: /etc/daemonlet/tls/key.pem}\n",
                  "config.yaml", d);
  REQUIRE(d.empty());
  const TaskPolicy p = taskPolicyOf(c);
  auto def = definition(R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":32,"environmentFiles":[
    {"value":"/etc/daemonlet/env/web.env","type":"local"},
    {"value":"/etc/daemonlet/secrets/db","type":"local"},
    {"value":"/etc/daemonlet/./token","type":"local"},
    {"value":"/etc/daemonlet/tls/key.pem","type":"local"}]}]})");
  const auto refused = checkTaskPolicy(p, def);
  CHECK(fields(refused) == "containerDefinitions[0].environmentFiles[1] containerDefinitions[0].environmentFiles[2] containerDefinitions[0].environmentFiles[3]");
  REQUIRE(refused.size() == 3);
  CHECK(refused[0].reason == "/etc/daemonlet/secrets/db lies in /etc/daemonlet/secrets, the agent's secrets.directory; environmentFiles never read it");
  // The secrets directory moved: the old place is an ordinary file below the root again.
  applyConfigText(c, "secrets: {directory: /var/lib/daemonlet-secrets}\n", "config.d/10.yaml", d);
  CHECK(fields(checkTaskPolicy(taskPolicyOf(c), def)) == "containerDefinitions[0].environmentFiles[2] containerDefinitions[0].environmentFiles[3]");
  // A root at or below the excluded place is the platform team saying yes.
  TaskPolicy widened = taskPolicyOf(c);
  widened.environmentFileRoots.push_back("/etc/daemonlet/token");
  CHECK(fields(checkTaskPolicy(widened, def)) == "containerDefinitions[0].environmentFiles[3]");
}

TEST_CASE("taskPolicy: app tasks use a shared volume daemonlet made for app tasks, or one taskPolicy.sharedVolumes names") {
  TaskPolicy p;
  const std::map<std::string, std::string> forTasks{{"io.daemonlet.shared-by", "task"}};
  const std::map<std::string, std::string> daemons{{"io.daemonlet.shared-by", "daemon"}};
  CHECK(sharedVolumeAllowed(p, "cache", forTasks));
  CHECK_FALSE(sharedVolumeAllowed(p, "monitor-data", daemons));
  CHECK_FALSE(sharedVolumeAllowed(p, "made-by-hand", {}));
  p.sharedVolumes = {"made-by-hand"};
  CHECK(sharedVolumeAllowed(p, "made-by-hand", {}));
  CHECK_FALSE(sharedVolumeAllowed(p, "monitor-data", daemons));
  p.sharedVolumes = {"*"};
  CHECK(sharedVolumeAllowed(p, "monitor-data", daemons));

  AgentConfig c;
  Diagnostics d;
  applyConfigText(c, "taskPolicy: {sharedVolumes: [made-by-hand, '*']}\n", "config.yaml", d);
  REQUIRE(d.empty());
  CHECK(c.taskPolicy.sharedVolumes == std::vector<std::string>{"made-by-hand", "*"});
}
