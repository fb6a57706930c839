#pragma once
// The agent's run loop: everything on one io_context thread. It adopts what runs, loads
// the desired state, re-plans on every change (and once a second), and carries the plan
// out through the executor.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "agent/source/DesiredStateSource.h"
#include "agent/Executor.h"
#include "agent/api/IntrospectionApi.h"
#include "agent/Logger.h"
#include "agent/core/Reconciler.h"
#include "agent/host/ServiceNotifier.h"
#include "agent/host/ShutdownInhibitor.h"
#include "agent/StateStore.h"
#include "config/AgentConfig.h"
#include "runtime/Runtime.h"

namespace daemonlet::agent {

class Agent final : public ApiBackend {
 public:
  struct Options {
    bool once = false;          // converge, then exit 0 (converged) or 1
    bool dryRun = false;        // print the plan, touch nothing
    bool drainOnExit = false;   // SIGTERM drains (applications, then daemons)
    std::chrono::seconds onceTimeout{300};
  };

  Agent(asio::io_context& io, config::AgentConfig config, Options options, Logger& log, runtime::Runtime& runtime);

  // Returns the process exit code.
  asio::awaitable<int> run();

  // SIGTERM/SIGINT. Without drainOnExit: exit promptly, every container left running (P5).
  void terminate();
  // Drain application tasks; daemons keep running.
  void drain();
  // Admit application tasks again; false while a shutdown runs.
  bool undrain();
  // Instance shutdown: drain, then stop daemons (P4).
  void shutdown();
  // logind's PrepareForShutdown: shutdown(), then release the hold and wait for SIGTERM.
  void prepareForShutdown(bool starting);

  // ApiBackend
  const Plan& plan() const override { return lastPlan_; }
  InstanceInfo instance() const override;
  const AgentMetrics& metrics() const override { return metrics_; }
  bool loopAlive() const override;
  void requestDrain() override { drain(); }
  bool requestUndrain() override { return undrain(); }
  // An exception caught at a coroutine or handler boundary: logged and counted.
  void internalError(const std::string& where, const std::string& what);

 private:
  asio::awaitable<bool> connect();
  asio::awaitable<void> resync(std::string why);
  void tick();
  void releaseFreedMemory(TimePoint now);
  void rememberGateOpened(bool forced);
  void restoreGateOfThisBoot();
  void logChanges(const Plan& plan);
  void notifyServiceManager(const Plan& plan);
  // The drain intent survives an agent restart (kill -9 mid-drain): stateDir/drain holds
  // "drain" or "shutdown" until the step is done or cancelled.
  void persistDrainIntent(const std::string& intent);
  std::string persistedDrainIntent() const;
  void maybeConfirmDrained(const Plan& plan);
  asio::awaitable<void> confirmDrained();
  void wake();
  Resources capacity() const;
  std::unique_ptr<DesiredStateSource> makeSource();
  void persistState();
  void saveChangedRecords();
  void reportLostTasks(const std::map<std::string, TaskRecord>& records);
  int printDryRun();

  asio::io_context& io_;
  config::AgentConfig config_;
  Options options_;
  Logger& log_;
  runtime::Runtime& runtime_;
  TaskCgroups cgroups_;
  Executor executor_;
  std::unique_ptr<DesiredStateSource> source_;
  DesiredStateSource::Shared desired_ = std::make_shared<const VersionedDesiredState>();  // with its ETag
  bool haveDesired_ = false;
  std::optional<StateStore> store_;
  std::map<std::string, TaskRecord> taskRecords_;  // as the last plan says
  TaskRecordChanges unsavedRecords_;               // not in state.json or its journal yet
  std::optional<std::chrono::steady_clock::time_point> recordsChangedAt_;  // the oldest of them
  Phase phase_ = Phase::Starting;
  Memory memory_;
  Plan lastPlan_;
  // The generation the last status report was published for, and whether the task records
  // were compared since the desired state arrived: tick() skips both while the plan says
  // the same as lastPlan_.
  struct {
    std::optional<std::int64_t> generation;
    bool recordsChecked = false;
  } lastReport_;
  std::int64_t reconcilesAtTrim_ = 0;  // releaseFreedMemory: the work done when it last ran
  TimePoint lastTrim_{};
  TimePoint bootAt_;
  std::optional<WallTime> hostBootAt_;
  std::vector<EngineOutage> engineOutages_;  // the last few, for task restart decisions
  std::string engineDescription_;
  bool resyncing_ = false;
  bool resyncAgain_ = false;
  bool engineStale_ = false;  // the engine went away and has not been listed since
  std::uint64_t engineDisconnects_ = 0;
  std::set<std::string> runningAtLastSave_;  // task ids, from the saved task records
  bool gateRemembered_ = false;
  bool terminating_ = false;
  bool cgroupMountsChecked_ = false;  // once per run, not on every reconnect
  bool drainRequested_ = false;
  bool shutdownRequested_ = false;
  std::optional<std::chrono::steady_clock::time_point> shutdownDeadline_;
  bool tasksConfirmedGone_ = false;
  bool confirming_ = false;
  asio::steady_timer wake_;
  bool wakePending_ = false;
  std::map<std::string, std::string> reported_;  // owner -> last status line logged
  AgentMetrics metrics_;
  std::chrono::steady_clock::time_point lastTick_ = std::chrono::steady_clock::now();
  std::unique_ptr<IntrospectionApi> api_;
  ServiceNotifier notifier_;
  std::unique_ptr<ShutdownInhibitor> inhibitor_;
  bool systemShutdown_ = false;  // the shutdown came from logind: stay until SIGTERM
};

// CPUs x 1024 units and MemTotal in MiB, read from this machine.
Resources detectCapacity();
// /etc/machine-id, else the host name.
std::string detectInstanceId();

}  // namespace daemonlet::agent
