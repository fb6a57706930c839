#pragma once
// An ECS RegisterTaskDefinition-shaped task definition as plain values (DESIGN 3.3).
// Both managed daemons and application tasks use it; nothing here knows JSON or YAML.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace daemonlet::config {

// Awsvpc: the task's own network namespace, shared by its containers (DESIGN 3.3).
enum class NetworkMode { Bridge, Host, None, Awsvpc };
enum class DependencyCondition { Start, Complete, Success, Healthy };
// What happens when an application task stops on its own (DESIGN 3.4 "Task restarts").
enum class TaskRestart { Always, OnFailure, Never };

struct EnvironmentVariable {
  std::string name;
  std::string value;
};

struct PortMapping {
  int containerPort = 0;
  std::optional<int> hostPort;
  std::string protocol = "tcp";
};

struct MountPoint {
  std::string sourceVolume;
  std::string containerPath;
  bool readOnly = false;
};

struct VolumeFrom {
  std::string sourceContainer;
  bool readOnly = false;
};

struct HealthCheck {
  std::vector<std::string> command;  // ["CMD", ...] or ["CMD-SHELL", "..."]
  int intervalSeconds = 30;
  int timeoutSeconds = 5;
  int retries = 3;
  int startPeriodSeconds = 0;
};

struct ContainerDependency {
  std::string containerName;
  DependencyCondition condition = DependencyCondition::Start;
};

struct Ulimit {
  std::string name;
  std::int64_t softLimit = 0;
  std::int64_t hardLimit = 0;
};

// An ECS secret reference: `valueFrom` names where the value lives (an ARN, a parameter
// name). Only the reference is held here; resolving it is the agent's job, at start.
struct Secret {
  std::string name;
  std::string valueFrom;
};

struct LogConfiguration {
  std::string logDriver;
  std::map<std::string, std::string> options;
  std::vector<Secret> secretOptions;  // log driver options whose values are secrets
};

struct TmpfsMount {
  std::string containerPath;
  std::int64_t sizeMiB = 0;
  std::vector<std::string> mountOptions;
};

struct LinuxParameters {
  std::vector<std::string> capabilitiesAdd;
  std::vector<std::string> capabilitiesDrop;
  bool initProcessEnabled = false;
  std::vector<TmpfsMount> tmpfs;
};

struct RestartPolicy {
  bool enabled = false;
  std::vector<int> ignoredExitCodes;
  std::optional<int> restartAttemptPeriodSeconds;
};

struct ContainerDefinition {
  std::string name;
  std::string image;
  bool essential = true;
  std::vector<std::string> command;
  std::vector<std::string> entryPoint;
  std::vector<EnvironmentVariable> environment;
  std::vector<std::string> environmentFiles;  // local paths, read when the container is created
  std::vector<Secret> secrets;                // environment variables whose values are secrets
  std::optional<std::int64_t> cpu;                // units, 1024 = 1 vCPU
  std::optional<std::int64_t> memory;             // MiB, hard limit
  std::optional<std::int64_t> memoryReservation;  // MiB, soft limit
  std::vector<PortMapping> portMappings;
  std::vector<MountPoint> mountPoints;
  std::vector<VolumeFrom> volumesFrom;
  std::optional<std::string> user;
  bool privileged = false;
  bool readonlyRootFilesystem = false;
  std::optional<std::string> workingDirectory;
  std::optional<int> stopTimeoutSeconds;
  std::optional<int> startTimeoutSeconds;
  std::vector<ContainerDependency> dependsOn;
  std::optional<HealthCheck> healthCheck;
  std::optional<LogConfiguration> logConfiguration;
  std::vector<Ulimit> ulimits;
  LinuxParameters linuxParameters;
  RestartPolicy restartPolicy;
};

struct DockerVolumeConfiguration {
  bool shared = false;  // scope: task (lives and dies with the task) | shared
  std::string driver = "local";
  std::map<std::string, std::string> driverOpts;
  std::map<std::string, std::string> labels;
  bool autoprovision = false;
};

// A volume with neither a host path nor a Docker volume configuration is an empty
// task-scoped volume.
struct Volume {
  std::string name;
  std::optional<std::string> hostSourcePath;
  std::optional<DockerVolumeConfiguration> dockerVolume;
};

struct TaskDefinition {
  std::string family;
  std::int64_t revision = 0;  // 0 when absent
  std::optional<std::int64_t> cpu;     // task-level, units
  std::optional<std::int64_t> memory;  // task-level, MiB
  NetworkMode networkMode = NetworkMode::Bridge;
  std::optional<std::string> pidMode;  // host | task
  std::vector<Volume> volumes;
  std::vector<ContainerDefinition> containers;
  bool critical = true;  // daemons only: holds the slot gate (P2)
  std::optional<TaskRestart> restart;  // task files only: the top-level `restart` field

  std::string sourceFile;     // where it was read from, for messages
  std::string canonicalJson;  // the whole document, keys sorted: the identity of a revision
  std::string hash;           // first 12 hex digits of SHA-256 over canonicalJson (DESIGN 3.6)
  // The hash daemonlet 0.1 gave this definition, where it differs (plain YAML scalars it
  // re-rendered): containers labelled with it are this revision, not an old one (P5).
  std::string legacyHash;

  const ContainerDefinition* container(const std::string& name) const;
};

const char* toString(NetworkMode mode);
const char* toString(DependencyCondition condition);
const char* toString(TaskRestart restart);
std::optional<TaskRestart> parseTaskRestart(std::string_view text);

}  // namespace daemonlet::config
