#pragma once
// Carries out a plan through the runtime and keeps the observed state: every action's
// result, every runtime event and every listing lands here. A step already under way is
// never issued again, and a step always ends, even when it throws.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/Guarded.h"
#include "agent/Logger.h"
#include "agent/TaskPreparation.h"
#include "agent/core/Reconciler.h"
#include "agent/host/TaskCgroups.h"
#include "runtime/Runtime.h"

namespace daemonlet::agent {

class Executor {
 public:
  struct Failure {
    std::string containerName;
    Kind kind;
    std::string owner;
    std::string message;
    // The task cannot start as defined (a secret, a volume, a log driver): it is reported
    // STOPPED with `message` as its reason until a retry succeeds.
    bool stopsTask = false;
  };

  Executor(asio::any_io_executor executor, runtime::Runtime& runtime, Logger& log, std::string instanceId);

  // Where secrets are read and how log drivers map (DESIGN 3.2 secrets.directory, logDrivers).
  void useSecretsDirectory(std::string directory) { preparation_.useSecretsDirectory(std::move(directory)); }
  void mapLogDrivers(std::map<std::string, std::string> map) { preparation_.mapLogDrivers(std::move(map)); }
  void useTaskPolicy(config::TaskPolicy policy) { preparation_.usePolicy(std::move(policy)); }

  // Called after anything changed what the agent sees (an action finished, an event).
  void onChange(std::function<void()> callback) { changed_ = std::move(callback); }
  // Called when a create or start failed, so the caller can back off.
  void onFailure(std::function<void(const Failure&)> callback) { failed_ = std::move(callback); }
  // Called when a step threw: a bug, counted and logged by the caller.
  void onInternalError(InternalErrorHandler handler) { internalError_ = std::move(handler); }

  // Where copies' containers go. Without cgroups (unit tests) the engine's default parent
  // is used; with them, a copy whose parent cannot be made is not created (fail closed);
  // without a task network, awsvpc copies cannot start (the failure says so).
  struct TaskNetwork {
    std::string name;          // the bridge network of awsvpc copies
    std::string subnet;
    std::string archiveDir;    // where the network holder's image archive is written
  };
  void useCgroups(TaskCgroups& cgroups) { cgroups_ = &cgroups; }
  void useTaskNetwork(TaskNetwork network) { network_ = std::move(network); }

  void execute(const std::vector<Action>& actions);

  // Replaces the observed state with a full listing (start-up adoption, resync). What this
  // agent created or removed while the listing was under way is kept as it knows it.
  asio::awaitable<runtime::Status> refresh();
  // Lists managed containers of other instance ids (orphans), and removes the parent
  // cgroups no managed container names any more (leftoverParents).
  asio::awaitable<runtime::Status> refreshOrphans();
  void applyEvent(const runtime::RuntimeEvent& event);

  ObservedState observed() const;
  const std::vector<OrphanContainer>& orphans() const { return orphans_; }
  bool inFlight(Kind kind) const;
  bool idle() const { return inFlight_.empty(); }

  // This instance's containers only: another agent may share the engine (a test, a
  // nested system container), and what it runs is none of ours to adopt or stop.
  runtime::LabelSelector managedSelector() const { return {{label::kManaged, "true"}, {label::kInstance, instanceId_}}; }

 private:
  asio::awaitable<void> run(Action action);
  asio::awaitable<void> carryOut(const Action& action);
  asio::awaitable<void> create(const Action& action);
  asio::awaitable<runtime::Result<runtime::ContainerSpec>> networkHolderSpec(const Action& action);
  // The copy's parent cgroup, made before its first container; nullopt without cgroups.
  runtime::Result<std::optional<std::string>> placeInCgroup(const Action& action);
  runtime::Status limitParent(const std::string& parent, const config::TaskDefinition& def);
  void releaseCgroup(const std::string& parent);
  void sweepLeftoverCgroups(const std::vector<runtime::ContainerInfo>& managed);
  struct CreatingIn {
    CreatingIn(Executor& executor, std::string parent);
    ~CreatingIn();
    Executor& executor;
    std::string parent;
    bool created = false;  // the container exists: its parent stays
  };
  asio::awaitable<runtime::Result<std::string>> createResolvingConflict(const Action& action, runtime::ContainerSpec spec);
  asio::awaitable<void> refreshOne(std::string id);
  void upsert(const runtime::ContainerInfo& info);
  void erase(const std::string& id);
  // True when this agent changed its view of `id` after `seq`: a listing or inspect that
  // began before then is older than what the agent knows.
  bool changedSince(const std::string& id, std::uint64_t seq) const;
  void fail(const Action& action, const std::string& message, bool stopsTask = false);
  asio::awaitable<void> failStart(const Action& action, runtime::Error error);
  // After a container is gone: the copy's task-scoped volumes go with its last container,
  // unless a create for the copy is under way (it keeps them); a create for a copy whose
  // volumes are being removed waits until they are gone, so it gets them afresh.
  void removeVolumesOfGoneCopy(const ObservedContainer& removed);
  asio::awaitable<void> removeCopyVolumes(Kind kind, std::string owner, std::string hash);
  asio::awaitable<void> awaitVolumeRemoval(const std::string& copy);
  void notify();
  // Counts a stop's or remove's failure toward its backoff; a success clears it.
  void noteStep(const Action& action, const runtime::Status& result);

  asio::any_io_executor executor_;
  runtime::Runtime& runtime_;
  Logger& log_;
  std::string instanceId_;
  std::map<std::string, ObservedContainer> containers_;  // by id
  std::map<std::string, std::uint64_t> changedAt_;       // by id: seq of the agent's last change
  std::uint64_t seq_ = 0;
  int listings_ = 0;  // under way; changedAt_ is pruned when none is
  std::vector<OrphanContainer> orphans_;
  std::map<std::string, Kind> inFlight_;  // by container name
  // Stops and removes the engine refused, by container name: each waits out its backoff
  // while still "in flight", or an engine that is down would be asked again at once, forever.
  std::map<std::string, int> stepFailures_;
  std::set<std::string> imagesPresent_;
  TaskCgroups* cgroups_ = nullptr;
  std::map<std::string, int> creatingIn_;  // parent cgroup -> creates under way into it
  std::map<std::string, int> creatingCopy_;      // copyKey -> creates under way
  std::map<std::string, int> removingVolumes_;   // copyKey -> volume removals under way
  std::optional<TaskNetwork> network_;
  bool networkReady_ = false;
  TaskPreparation preparation_;
  std::function<void()> changed_;
  std::function<void(const Failure&)> failed_;
  InternalErrorHandler internalError_;
};

// Reads environment files ("NAME=value" lines; blank lines and # comments skipped).
std::vector<std::string> readEnvironmentFiles(const std::vector<std::string>& paths, std::string& error);

}  // namespace daemonlet::agent
