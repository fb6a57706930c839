#pragma once
// The agent's own configuration (DESIGN 3.2). Built-in defaults, then the config file,
// then drop-ins from config.d/*.yaml in name order, then command-line flags.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/Diagnostic.h"
#include "config/Resources.h"
#include "config/TaskPolicy.h"

namespace daemonlet::config {

enum class SourceType { Directory, Http };
enum class RuntimeType { Docker, Containerd };
enum class LogLevel { Trace, Debug, Info, Warn, Error };
enum class LogFormat { Text, Json };

inline constexpr const char* kDefaultConfigPath = "/etc/daemonlet/config.yaml";

struct AgentConfig {
  struct Instance {
    std::string id = "auto";  // auto = /etc/machine-id
    std::string cluster = "default";
    std::string capacityProvider = "default";
    std::map<std::string, std::string> attributes;
    std::optional<Resources> capacity;  // nullopt = auto (CPUs x 1024, MemTotal)
    Resources reserved{0, 256};         // held back for the OS
  } instance;

  struct Source {
    SourceType type = SourceType::Directory;
    std::string path = "/etc/daemonlet/definitions";
    std::string url;
    std::string tokenFile;
    std::string caFile;
    std::string clientCertFile;
    std::string clientKeyFile;
    int pollSeconds = 20;
    int longPollSeconds = 55;
  } source;

  struct Runtime {
    RuntimeType type = RuntimeType::Docker;
    std::string endpoint;  // empty = the engine's usual socket; see runtimeEndpoint()
    std::string namespaceName = "daemonlet";
    // Engine calls under way at once; more wait their turn (runtime/LimitedRuntime.h).
    int maxCallsInFlight = 8;
    // containerd pulls: registries (host:port) reached over plain http, by explicit choice.
    std::vector<std::string> insecureRegistries;
  } runtime;

  // awsvpc tasks (DESIGN 3.3): the bridge network the agent creates for their namespaces.
  struct TaskNetwork {
    std::string name = "daemonlet0";     // network and host bridge interface (at most 15 characters)
    std::string subnet = "172.30.0.0/20";  // IPv4 CIDR; each awsvpc copy takes one address
  } taskNetwork;

  std::string stateDir = "/var/lib/daemonlet";
  std::string listen = "127.0.0.1:51680";
  bool listenAllowNonLoopback = false;  // the API shows every task: loopback unless asked
  // The full API, drain and undrain included (DESIGN 3.7): 0660, group daemonlet. The TCP
  // listener is read-only, since anything that reaches 127.0.0.1 could use it.
  std::string apiSocket = "/run/daemonlet/api.sock";
  TaskPolicy taskPolicy;  // what application tasks may ask for (config/TaskPolicy.h)
  // The local provider of ECS `secrets` and `secretOptions` (DESIGN 3.3): one file each.
  std::string secretsDirectory = "/etc/daemonlet/secrets";
  // Log drivers this host lacks, mapped to ones it has: {awslogs: journald}.
  std::map<std::string, std::string> logDrivers;
  int slotGateTimeoutSeconds = 0;  // 0 = hold application slots until every daemon is up
  int drainTimeoutSeconds = 300;
  LogLevel logLevel = LogLevel::Info;
  LogFormat logFormat = LogFormat::Text;
};

std::string runtimeEndpoint(const AgentConfig& config);

// config.taskPolicy with the agent's own secret files (secrets.directory, source.tokenFile,
// source.clientKeyFile) excluded from environmentFiles: the policy the agent enforces.
TaskPolicy taskPolicyOf(const AgentConfig& config);

// Applies the settings present in one YAML document onto `config`. Unknown keys and bad
// values are errors naming file, line and key; `config` keeps its value for those.
void applyConfigText(AgentConfig& config, std::string_view text, const std::string& origin,
                     Diagnostics& out);

// Defaults, then `file` (when it exists; a missing file is an error only if
// `mustExist`), then `file`'s sibling config.d/*.yaml in name order.
Parsed<AgentConfig> loadAgentConfig(const std::filesystem::path& file, bool mustExist);

// True when a YAML document looks like an agent config rather than a task definition.
bool looksLikeAgentConfig(std::string_view text);

std::optional<LogLevel> parseLogLevel(std::string_view text);
std::optional<LogFormat> parseLogFormat(std::string_view text);
std::optional<RuntimeType> parseRuntimeType(std::string_view text);
const char* toString(RuntimeType type);
const char* toString(SourceType type);
const char* toString(LogLevel level);

}  // namespace daemonlet::config
