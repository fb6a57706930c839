#pragma once
// The pure heart of the agent (DESIGN 2): desired state, observed containers, resources,
// phase and time in; the actions to take and what to report out. No I/O, no clock reads.
// Every ordering promise (P1-P4) is decided here:
//   gateApplications  P2  no application container before every critical daemon is up
//   rollDaemons       P1  one copy per family; start-new-then-stop-old; restarts with backoff
//   admitTasks        P3  tasks admitted by id while their reservation fits
//   refuseByPolicy        a task outside taskPolicy never starts; a running copy is kept (3.2, P5)
//   replaceStopped        a task that stopped on its own comes back after backoff (3.4)
//   drain             P4  applications stop first; daemons only once none is left
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/core/Model.h"
#include "config/DesiredState.h"
#include "config/TaskPolicy.h"

namespace daemonlet::agent {

// Exponential backoff: 1 s doubling, capped at 5 min (DESIGN 4).
struct Backoff {
  int failures = 0;
  TimePoint retryAt{};
  std::string reason;
  std::string hash;  // rollouts: the revision that failed
  std::set<std::string> copy;  // the failed copy's container ids: one failure per copy, not per plan
  bool removing = false;        // tasks: the failed copy's removal is under way (counted once)
  std::optional<TimePoint> upSince;  // tasks: running again since; 10 min of it forgives
  bool stopsTask = false;  // creates: the task cannot start as defined; reported STOPPED with `reason`
};

std::chrono::seconds backoffDelay(int failures);

// The reason a failed step carries when the engine refused a host port that something
// outside daemonlet holds: the task is STOPPED with RESOURCE:PORTS until its backoff ends.
inline constexpr const char* kPortsInUse = "RESOURCE:PORTS";
// ECS's word for a task whose resources could not be set up: here, its parent cgroup
// could not be made or limited, so nothing would enforce its reservation (P3).
inline constexpr const char* kResourceInitialization = "ResourceInitializationError";

// What the agent remembers between plans that the runtime cannot tell it. Lost on an
// agent restart, which is safe: everything here only delays or explains.
struct Memory {
  std::optional<TimePoint> gateOpenedAt;
  std::string gateReason;
  bool gateForced = false;  // opened by slotGate.timeoutSeconds, not by the daemons
  std::map<std::string, Backoff> restarts;        // daemon family -> restart backoff
  std::map<std::string, int> restartCounts;       // daemon family -> restarts this boot
  std::map<std::string, Backoff> failedRollouts;  // daemon family -> failed revision
  std::map<std::string, Backoff> createFailures;  // container name -> failed create/start
  std::map<std::string, Backoff> taskRestarts;    // task id -> replacement backoff (DESIGN 3.4)
  std::map<std::string, int> taskRestartCounts;   // task id -> replacements
  std::map<std::string, TimePoint> copySeenAt;    // "family/hash" -> first seen (start timeouts)
};

struct Settings {
  std::chrono::seconds slotGateTimeout{0};  // 0 = wait for the daemons however long
  std::chrono::seconds defaultStopTimeout{30};
  std::chrono::seconds defaultStartTimeout{120};  // a new daemon revision must be up by then
};

// A span of wall time in which the engine was unreachable; container exits inside it were
// caused by the engine going away, not by the application.
struct EngineOutage {
  WallTime from;
  WallTime to;
};

struct Inputs {
  Inputs(const config::DesiredState& d, const ObservedState& o) : desired(d), observed(o) {}

  const config::DesiredState& desired;
  const ObservedState& observed;
  std::string instanceId;  // part of every container name (DESIGN 3.6)
  Resources capacity{};  // offered to daemons and tasks: total minus instance.reserved
  Phase phase = Phase::Starting;
  bool drainRequested = false;     // daemonlet drain / API
  bool shutdownRequested = false;  // system shutdown or --drain-on-exit
  // P4 "confirm with the runtime": daemons stop only after a fresh listing showed no
  // application container running and none is being started.
  bool taskActionsInFlight = false;
  bool tasksConfirmedGone = false;
  bool daemonActionsInFlight = false;
  TimePoint bootAt{};  // when this agent started waiting for daemons
  TimePoint now{};
  // Exits before the host booted or during an engine outage count as failures (3.4).
  std::optional<WallTime> hostBootAt;
  std::vector<EngineOutage> engineOutages;
  // The engine was unreachable and has not been listed since: what `observed` says runs
  // may have died with it. No application starts on such a view (P2).
  bool observedStale = false;
  // Tasks whose saved record said RUNNING when this agent started: only their exits from
  // before the boot were the host going away.
  std::set<std::string> runningAtLastSave;
  Memory memory;
  Settings settings;
  config::TaskPolicy taskPolicy;  // application tasks only; daemons are the platform's own
};

struct Action {
  enum class Type { Create, Start, Stop, Remove };
  Type type = Type::Create;
  Kind kind = Kind::Task;
  std::string owner;          // daemon family or task id
  std::string containerId;    // Start, Stop, Remove
  std::string containerName;  // the runtime name; for Create the name to give
  std::string container;      // Create: the container's name in the definition
  std::optional<config::TaskDefinition> definition;  // Create and Start: the copy's
  std::chrono::seconds stopTimeout{30};
  std::string reason;  // why, for the log
};

struct ContainerStatus {
  std::string name;  // in the definition
  std::string id;
  std::string status;  // the runtime's word: created, running, exited, ...
  std::optional<int> exitCode;
};

struct DaemonStatus {
  std::string family;
  std::int64_t revision = 0;
  std::string hash;
  bool critical = true;
  Status status = Status::Pending;
  runtime::Health health = runtime::Health::None;  // None = declares no health check
  bool ready = false;  // RUNNING, and HEALTHY where declared
  std::vector<ContainerStatus> containers;
  std::optional<WallTime> startedAt;
  int restarts = 0;
  std::string lastError;
};

struct TaskStatus {
  std::string id;
  std::string family;
  std::int64_t revision = 0;
  Status status = Status::Pending;
  std::string stoppedReason;  // RESOURCE:MEMORY, RESOURCE:CPU, Essential container exited, ...
  int restarts = 0;           // replaced by fresh containers after stopping on its own
  std::string address;        // awsvpc: the task's own address on the task network
  // Running outside taskPolicy (tightened since it started): kept, reported, not restarted.
  std::string policyProblem;
  std::vector<ContainerStatus> containers;
};

struct Plan {
  Phase phase = Phase::Starting;
  std::vector<Action> actions;
  Memory memory;
  std::vector<DaemonStatus> daemons;
  std::vector<TaskStatus> tasks;
  Resources capacity;
  Resources daemonReserved;
  Resources available;
  std::vector<std::string> notes;  // decisions worth a log line
  bool converged = false;          // nothing to do and everything where it should be
  // The earliest time a decision of this plan changes with no event in between (a backoff
  // ends, a start timeout or the slot gate timeout passes): the loop sleeps until then.
  std::optional<TimePoint> wakeAt;
};

Plan reconcile(const Inputs& inputs);

std::string describe(const Action& action);

}  // namespace daemonlet::agent
