#pragma once
// Adapter-neutral descriptions of containers: what to create, what the engine reports.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace daemonlet::runtime {

using Labels = std::map<std::string, std::string>;
using Clock = std::chrono::system_clock;

struct Mount {
  enum class Type { Bind, Volume, Tmpfs };
  Type type = Type::Bind;
  std::string source;  // host path (bind) or volume name; empty for tmpfs
  std::string target;
  bool readOnly = false;
  std::int64_t tmpfsSizeBytes = 0;
  std::vector<std::string> tmpfsOptions;
};

struct PortBinding {
  int containerPort = 0;
  int hostPort = 0;  // 0 = engine picks
  std::string protocol = "tcp";
};

struct HealthCheckSpec {
  std::vector<std::string> test;  // ["CMD", ...] or ["CMD-SHELL", "..."]
  std::chrono::milliseconds interval{30000};
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds startPeriod{0};
  int retries = 3;
};

struct UlimitSpec {
  std::string name;
  std::int64_t soft = 0;
  std::int64_t hard = 0;
};

struct LogSpec {
  std::string driver;
  std::map<std::string, std::string> options;
};

struct ContainerSpec {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> entrypoint;
  std::vector<std::string> env;  // "NAME=value"
  Labels labels;
  std::optional<std::string> user;
  std::optional<std::string> workingDir;
  std::string networkMode = "bridge";  // host | bridge | none | container:<id>
  std::optional<std::string> pidMode;  // host
  std::vector<PortBinding> ports;
  std::vector<Mount> mounts;
  std::vector<std::string> volumesFrom;  // "<container>[:ro]"
  bool privileged = false;
  bool readOnlyRootfs = false;
  bool init = false;
  std::vector<std::string> capAdd;
  std::vector<std::string> capDrop;
  std::vector<UlimitSpec> ulimits;
  std::optional<LogSpec> log;
  std::optional<HealthCheckSpec> healthCheck;
  std::optional<std::int64_t> memoryBytes;             // hard limit
  std::optional<std::int64_t> memoryReservationBytes;  // soft limit
  std::int64_t cpuShares = 0;                          // relative weight; 0 = engine default
  std::optional<std::int64_t> nanoCpus;                // hard CPU cap (task-level cpu)
  std::optional<int> stopTimeoutSeconds;
  // The parent cgroup the container goes under, as the engine's cgroup driver names it: a
  // cgroupfs path ("/daemonlet/<group>") or a systemd slice ("daemonlet-<group>.slice").
  std::optional<std::string> cgroupParent;
};

enum class ContainerState { Created, Running, Paused, Restarting, Removing, Exited, Dead, Unknown };
enum class Health { None, Starting, Healthy, Unhealthy };

struct ContainerInfo {
  std::string id;
  std::string name;
  std::string image;
  Labels labels;
  ContainerState state = ContainerState::Unknown;
  int exitCode = 0;
  bool oomKilled = false;
  Health health = Health::None;
  std::optional<Clock::time_point> createdAt;
  std::optional<Clock::time_point> startedAt;
  std::optional<Clock::time_point> finishedAt;
  std::optional<std::int64_t> memoryBytes;  // limits as the engine applied them
  std::int64_t cpuShares = 0;
  std::optional<std::int64_t> nanoCpus;
  std::string cgroupParent;  // as the engine applied it; empty = the engine's default
  std::string ipAddress;     // on its own network; empty when it shares another's namespace
  std::string logDriver;     // as the engine applied it

  bool running() const { return state == ContainerState::Running || state == ContainerState::Restarting; }
};

struct RuntimeEvent {
  enum class Kind { Start, Exit, Oom, HealthChanged, Destroy };
  Kind kind = Kind::Start;
  std::string containerId;
  Labels labels;
  std::optional<int> exitCode;  // Exit
  Health health = Health::None;  // HealthChanged
  Clock::time_point time;
};

// A named volume: what to create, and what the engine reports of one.
struct VolumeSpec {
  std::string name;
  std::string driver = "local";
  std::map<std::string, std::string> driverOpts;
  Labels labels;
};

struct VolumeInfo {
  std::string name;
  std::string driver;
  std::map<std::string, std::string> options;
  Labels labels;
};

// Label equality filters, ANDed: {"io.daemonlet.managed": "true"}.
using LabelSelector = Labels;

struct EngineInfo {
  std::string name;        // "docker", "containerd"
  std::string version;     // engine version
  std::string apiVersion;  // the API version in use
  std::string cgroupDriver = "cgroupfs";  // how the engine names cgroups: cgroupfs | systemd
  int cgroupVersion = 0;                  // 1 (per-controller hierarchies), 2 (unified); 0 = unknown
};

// A bridge network that the agent owns (the awsvpc task network, DESIGN 3.3).
struct NetworkSpec {
  std::string name;    // the network's name, also the host bridge interface's (daemonlet0)
  std::string subnet;  // CIDR, e.g. 172.29.0.0/16
  Labels labels;
};

const char* toString(ContainerState state);
const char* toString(Health health);
const char* toString(RuntimeEvent::Kind kind);

}  // namespace daemonlet::runtime
