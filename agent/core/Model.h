#pragma once
// The agent's vocabulary (DESIGN 3.7): instance phases, task and daemon statuses, and the
// containers it manages as read back from their labels (DESIGN 3.6).
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/Resources.h"
#include "runtime/Container.h"

namespace daemonlet::agent {

// Internal deadlines (backoffs, timeouts, the slot gate) run on the steady clock, so an NTP
// step can neither open the gate early nor freeze a restart. The engine reports wall-clock
// times; those stay WallTime and are only compared with each other.
using TimePoint = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using config::Resources;

enum class Phase { Starting, DaemonsPending, Active, Draining, Drained, StoppingDaemons, Stopped };
enum class Status { Pending, Activating, Running, Deactivating, Stopping, Stopped };
enum class Kind { Daemon, Task };

const char* toString(Phase phase);
const char* toString(Status status);
const char* toString(Kind kind);

namespace label {
inline constexpr const char* kManaged = "io.daemonlet.managed";
inline constexpr const char* kKind = "io.daemonlet.kind";
inline constexpr const char* kFamily = "io.daemonlet.family";
inline constexpr const char* kRevision = "io.daemonlet.revision";
inline constexpr const char* kHash = "io.daemonlet.hash";
inline constexpr const char* kTaskId = "io.daemonlet.task-id";
inline constexpr const char* kContainer = "io.daemonlet.container";
inline constexpr const char* kInstance = "io.daemonlet.instance";
// Not in the public contract: the reservation the group was admitted with, so that an
// agent restarted with a changed definition still accounts for what runs.
inline constexpr const char* kCpu = "io.daemonlet.reserved-cpu";
inline constexpr const char* kMemory = "io.daemonlet.reserved-memory";
// The host ports the copy publishes ("8080/tcp,53/udp"), held while it lives (RESOURCE:PORTS).
inline constexpr const char* kHostPorts = "io.daemonlet.host-ports";
}  // namespace label

// One container the agent manages, as the runtime reports it.
struct ObservedContainer {
  std::string id;
  std::string name;
  Kind kind = Kind::Task;
  std::string family;
  std::int64_t revision = 0;
  std::string hash;
  std::string taskId;     // tasks only
  std::string container;  // its name inside the definition
  Resources reservation;  // of the whole task/daemon it belongs to
  runtime::ContainerState state = runtime::ContainerState::Unknown;
  int exitCode = 0;
  bool oomKilled = false;
  runtime::Health health = runtime::Health::None;
  std::optional<WallTime> createdAt;
  std::optional<WallTime> startedAt;
  std::optional<WallTime> finishedAt;
  std::string cgroupParent;            // the copy's parent cgroup; empty = the engine's default
  std::string address;                 // its own network address (an awsvpc network holder's)
  std::vector<std::string> hostPorts;  // of the whole copy, as "8080/tcp"

  bool running() const;
  bool exited() const;
  bool neverStarted() const { return state == runtime::ContainerState::Created; }
  // The key that groups the containers of one copy: a daemon revision or a task run.
  const std::string& owner() const { return kind == Kind::Daemon ? family : taskId; }
};

// nullopt for containers without daemonlet's labels.
std::optional<ObservedContainer> observe(const runtime::ContainerInfo& info);

// A managed container of another instance id (a baked image booted under a new
// machine-id, a second agent on the engine): reported, never adopted, never removed unasked.
struct OrphanContainer {
  std::string id;
  std::string name;
  std::string instance;
  Kind kind = Kind::Task;
  std::string owner;  // daemon family or task id
  bool running = false;
};

struct ObservedState {
  std::vector<ObservedContainer> containers;
};

}  // namespace daemonlet::agent
