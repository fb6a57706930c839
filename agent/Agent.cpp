#include "agent/Agent.h"

#include "agent/source/ControlEndpointSource.h"
#include "agent/source/DirectorySource.h"
#include "agent/StateStore.h"
#include "agent/host/BakedImages.h"
#include "agent/host/CgroupMounts.h"

#include <malloc.h>
#include <unistd.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/ScopedFlag.h"
#include <iostream>

namespace daemonlet::agent {
namespace {

using std::chrono::steady_clock;

std::string owned(Kind kind, const std::string& owner) { return std::string(toString(kind)) + " " + owner; }

double secondsBetween(WallTime a, WallTime b) { return std::chrono::duration<double>(b - a).count(); }

std::string firstLineOf(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The kernel's boot id: "the slot gate opened in this boot" survives an agent restart,
// not a reboot.
std::string bootId() { return firstLineOf("/proc/sys/kernel/random/boot_id"); }

// When the host booted (btime in /proc/stat): a container that exited before it was
// stopped by the host going away.
std::optional<WallTime> hostBootTime() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      long long seconds = 0;
      if (in >> seconds) return WallTime(std::chrono::seconds(seconds));
      break;
    }
    in.ignore(1 << 16, '\n');
  }
  return std::nullopt;
}

constexpr std::size_t kOutagesKept = 8;
// How often an idle loop proves it is alive (systemd's watchdog wants half of 30 s;
// /healthz calls the loop stalled after 10 s without a turn).
constexpr auto kHeartbeat = std::chrono::seconds(5);
// A full listing beside the event stream, in case an event was lost.
constexpr auto kResyncEvery = std::chrono::seconds(60);
// Task records that changed wait this long for more before one append and fsync: a burst
// of 1,000 starts is a few appends, not 1,000 (issue 15). A kill -9 inside it loses at most
// this much history; the records only explain, they decide nothing the labels do not.
constexpr auto kRecordsFlushAfter = std::chrono::seconds(1);

}  // namespace

Resources detectCapacity() {
  Resources r;
  r.cpu = static_cast<std::int64_t>(::sysconf(_SC_NPROCESSORS_ONLN)) * 1024;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    std::int64_t kib = 0;
    meminfo >> kib;
    if (key == "MemTotal:") {
      r.memory = kib / 1024;
      break;
    }
    meminfo.ignore(256, '\n');
  }
  return r;
}

std::string detectInstanceId() {
  std::ifstream in("/etc/machine-id");
  std::string id;
  if (in >> id && !id.empty()) return id;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

Agent::Agent(asio::io_context& io, config::AgentConfig config, Options options, Logger& log, runtime::Runtime& runtime)
    : io_(io),
      config_(std::move(config)),
      options_(options),
      log_(log),
      runtime_(runtime),
      cgroups_(log),
      executor_(io.get_executor(), runtime, log, config_.instance.id),
      wake_(io) {
  executor_.useCgroups(cgroups_);
  executor_.useTaskNetwork({config_.taskNetwork.name, config_.taskNetwork.subnet, config_.stateDir});
  executor_.useSecretsDirectory(config_.secretsDirectory);
  executor_.mapLogDrivers(config_.logDrivers);
  executor_.useTaskPolicy(config::taskPolicyOf(config_));
}

Resources Agent::capacity() const {
  return config_.instance.capacity.value_or(detectCapacity()) - config_.instance.reserved;
}

// A wake-up that arrives while the loop is busy (mid-tick) must not be lost: cancel()
// only reaches a wait already under way, the flag covers the rest.
void Agent::wake() {
  wakePending_ = true;
  wake_.cancel();
}

void Agent::prepareForShutdown(bool starting) {
  if (starting) {
    log_.info("system shutdown: draining application tasks, then daemons, before releasing the shutdown hold");
    systemShutdown_ = true;
    shutdown();
    return;
  }
  log_.info("system shutdown cancelled: back to normal; taking the shutdown hold again");
  systemShutdown_ = false;
  persistDrainIntent(drainRequested_ ? "drain" : "");
  shutdownRequested_ = false;
  shutdownDeadline_.reset();
  tasksConfirmedGone_ = false;
  if (inhibitor_) inhibitor_->take();
  wake();
}

void Agent::terminate() {
  notifier_.stopping("stopping the agent; containers keep running");
  if (options_.drainOnExit) {
    log_.info("SIGTERM with --drain-on-exit: draining application tasks, then daemons (limit {} s)", config_.drainTimeoutSeconds);
    shutdown();
    return;
  }
  terminating_ = true;
  wake();
}

bool Agent::undrain() {
  if (shutdownRequested_) {
    log_.warn("undrain refused: the instance is shutting down");
    return false;
  }
  if (drainRequested_) log_.info("undrain requested: admitting application tasks again");
  drainRequested_ = false;
  tasksConfirmedGone_ = false;
  persistDrainIntent("");
  wake();
  return true;
}

void Agent::internalError(const std::string& where, const std::string& what) {
  ++metrics_.internalErrors;
  log_.error("internal error in {}: {} (counted in daemonlet_internal_errors_total; the agent carries on)", where, what);
  wake();
}

void Agent::drain() {
  if (!drainRequested_) log_.info("drain requested: admitting nothing, stopping application tasks; daemons keep running");
  drainRequested_ = true;
  if (!shutdownRequested_) persistDrainIntent("drain");
  wake();
}

void Agent::shutdown() {
  if (!shutdownRequested_) shutdownDeadline_ = steady_clock::now() + std::chrono::seconds(config_.drainTimeoutSeconds);
  shutdownRequested_ = true;
  // A system shutdown is not resumed: the machine is going down, and a marker left behind
  // would drain it again after the next boot.
  if (!systemShutdown_) persistDrainIntent("shutdown");
  wake();
}

void Agent::persistDrainIntent(const std::string& intent) {
  const std::filesystem::path marker = std::filesystem::path(config_.stateDir) / "drain";
  std::error_code ec;
  if (intent.empty()) {
    std::filesystem::remove(marker, ec);
    return;
  }
  if (!writeFileAtomically(marker, intent + "\n"))
    log_.warn("cannot record the {} in {}: {}; a restarted agent would not resume it", intent, marker.string(), strerror(errno));
}

std::string Agent::persistedDrainIntent() const {
  std::ifstream in(std::filesystem::path(config_.stateDir) / "drain");
  std::string intent;
  in >> intent;
  return intent;
}

std::unique_ptr<DesiredStateSource> Agent::makeSource() {
  if (config_.source.type == config::SourceType::Http) {
    ControlEndpointSource::Registration registration{config_.instance.capacityProvider, config_.instance.attributes, DAEMONLET_VERSION,
                                                     capacity()};
    return std::make_unique<ControlEndpointSource>(io_.get_executor(), ControlEndpointSource::settingsFrom(config_),
                                                   std::move(registration), log_);
  }
  return std::make_unique<DirectorySource>(io_.get_executor(), config_.source.path, std::chrono::seconds(config_.source.pollSeconds), log_);
}

void Agent::persistState() {
  if (!store_) return;
  store_->save(*desired_, taskRecords_, config_.instance.id);
  unsavedRecords_.clear();  // in the snapshot now
  recordsChangedAt_.reset();
}

void Agent::saveChangedRecords() {
  if (!store_ || unsavedRecords_.empty()) return;
  if (store_->appendRecords(unsavedRecords_)) unsavedRecords_.clear();
  recordsChangedAt_.reset();  // a failed append is tried again with the next change
  if (store_->compactionDue()) persistState();
}

// A task that was RUNNING when the state was last saved but has no container now lost it
// while the agent was down (docker rm, a wiped engine): say so before it starts again.
void Agent::reportLostTasks(const std::map<std::string, TaskRecord>& records) {
  const ObservedState observed = executor_.observed();
  for (const auto& [id, record] : records) {
    if (record.status != toString(Status::Running)) continue;
    const bool hasContainer = std::any_of(observed.containers.begin(), observed.containers.end(),
                                          [&, id = id](const ObservedContainer& c) { return c.kind == Kind::Task && c.owner() == id; });
    if (!hasContainer) log_.warn("task {} was RUNNING when the agent last saved its state, but none of its containers exists now", id);
  }
}

asio::awaitable<bool> Agent::connect() {
  std::chrono::milliseconds delay{500};
  for (int attempt = 1;; ++attempt) {
    auto version = co_await runtime_.version();
    if (version) {
      engineDescription_ = fmt::format("{} {}", version->name, version->version);
      log_.info("runtime: {} {} (API {}) at {}; cgroup driver {}, cgroup v{}", version->name, version->version, version->apiVersion,
                config::runtimeEndpoint(config_), version->cgroupDriver, version->cgroupVersion);
      cgroups_.configure(cgroupDriverOf(version->cgroupDriver), version->cgroupVersion);
      // Docker before 20.10 reports no cgroup version (0): those hosts are v1 too.
      if (version->cgroupVersion != 2 && !cgroupMountsChecked_) {
        cgroupMountsChecked_ = true;
        for (const auto& hierarchy : unmountedCgroupHierarchies())
          log_.warn("cgroup v1 hierarchy {} is listed in /proc/self/cgroup but mounted nowhere here: the engine will not report OOM "
                    "kills (OOMKilled false, no oom event); mount it: {} (with /sys/fs/cgroup remounted rw first if it is read-only)",
                    hierarchy, cgroupMountCommand(hierarchy));
      }
      auto adopted = co_await executor_.refresh();
      if (adopted) co_return true;
      log_.warn("runtime: listing containers failed: {}", adopted.error().message);
    } else {
      log_.warn("runtime: {} (attempt {}; retrying in {} ms)", version.error().message, attempt, delay.count());
      if (version.error().code == runtime::Error::Code::Unsupported) co_return false;
    }
    if (terminating_ || ((options_.once || options_.dryRun) && attempt >= 5)) co_return false;
    wake_.expires_after(delay);
    boost::system::error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    delay = std::min(delay * 2, std::chrono::milliseconds(10000));
  }
}

InstanceInfo Agent::instance() const {
  return {config_.instance.cluster,
          config_.instance.id,
          DAEMONLET_VERSION,
          config_.instance.capacity.value_or(detectCapacity()),
          config_.instance.reserved,
          engineDescription_,
          executor_.orphans(),
          source_ ? source_->problems() : std::vector<std::string>{}};
}

// /healthz: the loop turns at least every kHeartbeat; ten seconds without a turn means it is stuck.
bool Agent::loopAlive() const { return steady_clock::now() - lastTick_ < std::chrono::seconds(10); }

asio::awaitable<int> Agent::run() {
  log_.info("daemonlet {} starting: instance {}, cluster {}, source {} {}, runtime {} at {}", DAEMONLET_VERSION, config_.instance.id,
            config_.instance.cluster, config::toString(config_.source.type),
            config_.source.type == config::SourceType::Directory ? config_.source.path : config_.source.url,
            config::toString(config_.runtime.type), config::runtimeEndpoint(config_));
  if (!options_.dryRun) {
    api_ = std::make_unique<IntrospectionApi>(io_.get_executor(), *this, log_);
    if (auto listening = api_->listen(config_.listen, config_.listenAllowNonLoopback)) {
      log_.info("introspection API on http://{}", config_.listen);
    } else {
      log_.error("introspection API not started: {}", listening.error().message);
    }
    if (auto socket = api_->listenSocket(config_.apiSocket)) {
      log_.info("API socket (drain, undrain) at {}", config_.apiSocket);
    } else {
      log_.error("API socket not started: {}; daemonlet drain and undrain will not reach this agent", socket.error().message);
    }
  }
  if (!options_.dryRun && !options_.once) {
    inhibitor_ = std::make_unique<ShutdownInhibitor>(io_.get_executor(), log_);
    if (!inhibitor_->start(std::chrono::seconds(config_.drainTimeoutSeconds), [this](bool starting) { prepareForShutdown(starting); }))
      inhibitor_.reset();
  }
  if (!co_await connect()) {
    // Stopped (SIGTERM) while waiting for the engine: the stop was asked for and nothing
    // failed, so exit 0; under systemd an exit 1 would mark the unit failed.
    if (terminating_) {
      log_.info("stopped before the runtime was reachable; no container was touched");
      co_return 0;
    }
    log_.error("runtime: not reachable; giving up");
    co_return 1;
  }
  if (!options_.dryRun) {
    co_await loadBakedImages(runtime_, std::filesystem::path(config_.stateDir) / "images",
                             fmt::format("{} {}", config::toString(config_.runtime.type), config::runtimeEndpoint(config_)), log_);
  }
  const ObservedState adopted = executor_.observed();
  std::size_t running = 0;
  for (const auto& c : adopted.containers) running += c.running();
  log_.info("adopted {} managed container(s), {} running: none is restarted (P5)", adopted.containers.size(), running);
  bootAt_ = steady_clock::now();
  hostBootAt_ = hostBootTime();
  if (auto r = co_await executor_.refreshOrphans(); !r) log_.warn("runtime: listing other instances' containers failed: {}", r.error().message);
  if (!options_.dryRun) restoreGateOfThisBoot();
  if (!options_.dryRun) {
    // Resume what a previous agent was in the middle of (P5: it finishes the step).
    const std::string intent = persistedDrainIntent();
    if (intent == "shutdown") {
      log_.info("resuming the shutdown drain a previous agent started ({}/drain)", config_.stateDir);
      shutdown();
    } else if (intent == "drain") {
      log_.info("resuming the drain a previous agent started ({}/drain); remove that file and restart to admit tasks again", config_.stateDir);
      drain();
    }
  }

  source_ = makeSource();
  std::optional<VersionedDesiredState> saved;
  if (!options_.dryRun) {
    store_.emplace(config_.stateDir, log_);
    if (auto persisted = store_->load()) {
      const auto& state = persisted->desired.state;
      log_.info("last good desired state: {} (generation {}, {} daemon(s), {} task(s))", store_->path().string(), state.generation,
                state.daemons.size(), state.tasks.size());
      if (persisted->instanceId.empty() || persisted->instanceId == config_.instance.id) {
        reportLostTasks(persisted->tasks);
        for (const auto& [id, record] : persisted->tasks) {
          if (record.status == toString(Status::Running)) runningAtLastSave_.insert(id);
        }
        taskRecords_ = std::move(persisted->tasks);
      } else {
        log_.info("{} holds task records of instance '{}': not this instance's, ignored", store_->path().string(), persisted->instanceId);
      }
      saved = std::move(persisted->desired);
    }
  }
  source_->start([this](DesiredStateSource::Shared versioned) {
    desired_ = std::move(versioned);
    haveDesired_ = true;
    persistState();
    wake();
  }, std::move(saved));
  if (options_.dryRun) {
    // A control endpoint answers asynchronously: wait for its first desired state.
    const auto giveUp = steady_clock::now() + std::chrono::seconds(30);
    while (!haveDesired_ && steady_clock::now() < giveUp && !terminating_) {
      wake_.expires_after(std::chrono::milliseconds(100));
      boost::system::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!haveDesired_) {
      log_.error("dry run: no desired state from {} within 30 s", config_.source.url);
      co_return 1;
    }
    co_return printDryRun();
  }

  executor_.onChange([this] { wake(); });
  executor_.onFailure([this](const Executor::Failure& f) {
    Backoff& b = memory_.createFailures[f.containerName];
    b.failures += 1;
    b.reason = f.message;
    b.stopsTask = f.stopsTask;
    b.retryAt = steady_clock::now() + backoffDelay(b.failures);
  });
  executor_.onInternalError([this](const std::string& where, const std::string& what) { internalError(where, what); });
  // After every (re)connection the agent lists for itself rather than trusting the watch's
  // snapshot: its own listing knows which of its creates and removes happened meanwhile.
  runtime_.watch(executor_.managedSelector(),
                 {[this](const runtime::RuntimeEvent& e) { executor_.applyEvent(e); },
                  [this](const std::vector<runtime::ContainerInfo>&) {
                    if (!engineOutages_.empty() && engineOutages_.back().to == WallTime::max()) {
                      engineOutages_.back().to = std::chrono::system_clock::now();
                      log_.info("runtime events: reconnected; resyncing");
                    }
                    spawnGuarded(io_.get_executor(), resync("engine reconnected"), "resync", [this](auto& w, auto& e) { internalError(w, e); });
                  },
                  [this](const runtime::Error& e) {
                    engineStale_ = true;  // until a listing after the reconnect (P2)
                    ++engineDisconnects_;
                    if (engineOutages_.empty() || engineOutages_.back().to != WallTime::max()) {
                      engineOutages_.push_back({std::chrono::system_clock::now(), WallTime::max()});
                      if (engineOutages_.size() > kOutagesKept) engineOutages_.erase(engineOutages_.begin());
                    }
                    log_.warn("runtime events: {}; reconnecting", e.message);
                  }});

  const auto onceDeadline = steady_clock::now() + options_.onceTimeout;
  auto lastRefresh = steady_clock::now();
  int exitCode = 0;
  bool due = true;  // something happened, or a deadline of the last plan passed
  for (;;) {
    if (terminating_) {
      const auto left = executor_.observed().containers.size();
      log_.info("stopping the agent only: {} managed container(s) keep running (P5)", left);
      break;
    }
    lastTick_ = steady_clock::now();
    notifier_.keepAlive();
    // A shutdown before any desired state arrived still drains what runs (an empty desired
    // state stops tasks, then daemons) instead of holding the machine for the whole limit.
    if (due && (haveDesired_ || shutdownRequested_)) tick();
    if (source_) metrics_.controlEndpointErrors = source_->errors();
    if (options_.once && lastPlan_.converged && executor_.idle()) {
      log_.info("converged: phase {}", toString(phase_));
      break;
    }
    if (options_.once && steady_clock::now() > onceDeadline) {
      log_.error("not converged after {} s", options_.onceTimeout.count());
      exitCode = 1;
      break;
    }
    if (shutdownRequested_ && phase_ == Phase::Stopped && executor_.idle()) {
      if (!systemShutdown_) {
        log_.info("shutdown complete: application tasks drained, daemons stopped");
        persistDrainIntent(drainRequested_ ? "drain" : "");
        break;
      }
      if (inhibitor_ && inhibitor_->holding()) {
        log_.info("shutdown complete: application tasks drained, daemons stopped; releasing the hold");
        inhibitor_->release();
      }
    }
    if (shutdownDeadline_ && steady_clock::now() > *shutdownDeadline_) {
      log_.error("shutdown.drainTimeoutSeconds ({} s) passed in phase {}; giving up the drain", config_.drainTimeoutSeconds, toString(phase_));
      shutdownDeadline_.reset();
      if (!systemShutdown_) {
        exitCode = 1;
        break;
      }
      if (inhibitor_) inhibitor_->release();  // never hold the machine past the limit
    }
    if (steady_clock::now() - lastRefresh > kResyncEvery) {
      // Belt and braces next to the event stream: a full listing now and then, beside the
      // loop rather than in it, so ticks, the watchdog and /healthz never wait for it.
      lastRefresh = steady_clock::now();
      spawnGuarded(io_.get_executor(), resync("periodic"), "resync", [this](auto& w, auto& e) { internalError(w, e); });
    }
    if (wakePending_) {
      wakePending_ = false;
      due = true;
      continue;
    }
    // Event-driven: sleep until woken (runtime events, finished steps, the source, the API)
    // or until the earliest deadline. Without either, the loop only wakes to prove it is
    // alive (watchdog, /healthz), and plans nothing.
    const auto now = steady_clock::now();
    releaseFreedMemory(now);
    if (recordsChangedAt_ && now >= *recordsChangedAt_ + kRecordsFlushAfter) saveChangedRecords();
    auto until = now + kHeartbeat;
    if (recordsChangedAt_) until = std::min(until, *recordsChangedAt_ + kRecordsFlushAfter);
    if (lastPlan_.wakeAt) until = std::min(until, *lastPlan_.wakeAt);
    until = std::min(until, lastRefresh + kResyncEvery + std::chrono::milliseconds(1));
    if (shutdownDeadline_) until = std::min(until, *shutdownDeadline_ + std::chrono::milliseconds(1));
    if (options_.once) until = std::min(until, now + std::chrono::seconds(1));
    wake_.expires_at(until);
    boost::system::error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const auto woke = steady_clock::now();
    due = wakePending_ || options_.once || shutdownRequested_ || (lastPlan_.wakeAt && woke >= *lastPlan_.wakeAt);
    wakePending_ = false;
  }
  saveChangedRecords();
  runtime_.stopWatching();
  if (api_) api_->stop();
  co_return exitCode;
}

// glibc keeps what was freed for reuse. After a burst (start-up, a resync listing every
// container on the host) that is megabytes of heap nobody uses, counted in RSS (issue 15:
// 9.6 MiB anonymous fell to 2.9 MiB). Hand it back as the loop goes idle, at most every
// kHeartbeat and only after some work, so an idle agent pays nothing.
void Agent::releaseFreedMemory(TimePoint now) {
  if (metrics_.reconciles == reconcilesAtTrim_ || now - lastTrim_ < kHeartbeat) return;
  reconcilesAtTrim_ = metrics_.reconciles;
  lastTrim_ = now;
  ::malloc_trim(0);
}

void Agent::tick() {
  const ObservedState observed = executor_.observed();
  Inputs in{desired_->state, observed};
  in.capacity = capacity();
  in.phase = phase_;
  in.drainRequested = drainRequested_;
  in.shutdownRequested = shutdownRequested_;
  in.taskActionsInFlight = executor_.inFlight(Kind::Task);
  in.daemonActionsInFlight = executor_.inFlight(Kind::Daemon);
  in.tasksConfirmedGone = tasksConfirmedGone_;
  in.bootAt = bootAt_;
  in.now = steady_clock::now();
  in.instanceId = config_.instance.id;
  in.hostBootAt = hostBootAt_;
  in.engineOutages = engineOutages_;
  in.runningAtLastSave = runningAtLastSave_;
  in.observedStale = engineStale_;
  if (!in.engineOutages.empty() && in.engineOutages.back().to == WallTime::max()) in.engineOutages.back().to = std::chrono::system_clock::now();
  in.memory = memory_;
  in.settings.slotGateTimeout = std::chrono::seconds(config_.slotGateTimeoutSeconds);
  in.taskPolicy = config::taskPolicyOf(config_);
  const auto started = steady_clock::now();
  Plan plan = reconcile(in);
  metrics_.observeReconcile(std::chrono::duration<double>(steady_clock::now() - started).count());
  // A decision repeats while its action is under way; say it once.
  for (const auto& n : plan.notes) {
    if (std::find(lastPlan_.notes.begin(), lastPlan_.notes.end(), n) != lastPlan_.notes.end()) continue;
    log_.at(n.rfind("WARNING: ", 0) == 0 ? config::LogLevel::Warn : config::LogLevel::Info, n);
    if (n.find(": rolling out r") != std::string::npos) ++metrics_.rollouts;
  }
  if (plan.phase != phase_) {
    log_.info("phase {} -> {}", toString(phase_), toString(plan.phase));
    wake();  // the next phase may have work at once
  }
  phase_ = plan.phase;
  if (plan.memory.gateOpenedAt && !memory_.gateOpenedAt) rememberGateOpened(plan.memory.gateForced);
  memory_ = plan.memory;
  logChanges(plan);
  executor_.execute(plan.actions);
  maybeConfirmDrained(plan);
  notifyServiceManager(plan);
  // Rendering the report and the records costs milliseconds at 1,000 tasks, comparing the
  // plan with the last one microseconds: most events change neither (issue 15).
  const bool reportChanged = !lastReport_.generation || *lastReport_.generation != desired_->state.generation || !sameStatusReport(plan, lastPlan_);
  if (haveDesired_ && (reportChanged || !lastReport_.recordsChecked)) {
    for (auto& [id, record] : applyTaskRecords(taskRecords_, plan.tasks)) unsavedRecords_[id] = std::move(record);
    if (!unsavedRecords_.empty() && !recordsChangedAt_) recordsChangedAt_ = steady_clock::now();
    lastReport_.recordsChecked = true;
  }
  if (reportChanged) {
    // Rendered when the source sends it (at most once per report interval), from the
    // newest plan then: not once per event.
    lastReport_.generation = desired_->state.generation;
    source_->publish([this] { return statusReportDocument(lastPlan_, *lastReport_.generation); });
  }
  metrics_.controlEndpointErrors = source_->errors();
  lastPlan_ = std::move(plan);
}

asio::awaitable<void> Agent::resync(std::string why) {
  if (resyncing_) {
    resyncAgain_ = true;  // a reconnect during a periodic listing still gets its own
    co_return;
  }
  do {
    resyncAgain_ = false;
    ScopedFlag running(resyncing_);
    const bool reconnected = engineOutages_.empty() || engineOutages_.back().to != WallTime::max();
    const auto disconnects = engineDisconnects_;
    auto r = co_await executor_.refresh();
    if (!r) log_.warn("runtime: {} resync failed: {}", why, r.error().message);
    // Only a listing begun after the event stream came back, and not cut by another
    // outage, shows what survived.
    if (r && reconnected && disconnects == engineDisconnects_) engineStale_ = false;
    auto orphans = co_await executor_.refreshOrphans();
    if (!orphans) log_.warn("runtime: listing other instances' containers failed: {}", orphans.error().message);
  } while (resyncAgain_);
  wake();
}

// stateDir/slot-gate holds the boot id of the boot in which the gate opened: an agent
// restarted in the same boot (a package upgrade) opens it at once and reports READY=1
// promptly. Applications still start only while critical daemons are up (Reconciler).
void Agent::rememberGateOpened(bool forced) {
  if (options_.dryRun || gateRemembered_) return;
  gateRemembered_ = true;
  const std::string how = forced ? "forced" : "daemons";
  if (!writeFileAtomically(std::filesystem::path(config_.stateDir) / "slot-gate", bootId() + " " + config_.instance.id + " " + how + "\n"))
    log_.warn("cannot record the open slot gate in {}/slot-gate: a restarted agent will wait for the daemons again", config_.stateDir);
}

void Agent::restoreGateOfThisBoot() {
  // "<boot id> <instance id>": another instance sharing the state directory (a new
  // machine-id, a baked image) has a gate of its own to open.
  std::istringstream saved(firstLineOf(std::filesystem::path(config_.stateDir) / "slot-gate"));
  std::string boot, instance, how;
  saved >> boot >> instance >> how;
  const std::string now = bootId();
  if (now.empty() || boot != now || instance != config_.instance.id) return;
  memory_.gateOpenedAt = steady_clock::now();
  // Opened by slotGate.timeoutSeconds: it stays forced, or a broken critical daemon would
  // hold every new task after an agent upgrade.
  memory_.gateForced = how == "forced";
  memory_.gateReason = "opened earlier in this boot (boot id " + now.substr(0, 8) + "); applications start while critical daemons are up";
  gateRemembered_ = true;
  log_.info("slot gate: {}", memory_.gateReason);
}

// P4: before daemons stop, ask the runtime itself whether any application container is left.
void Agent::maybeConfirmDrained(const Plan& plan) {
  const bool draining = plan.phase == Phase::Draining || plan.phase == Phase::Drained;
  const auto observed = executor_.observed();
  const bool tasksRunning = std::any_of(observed.containers.begin(), observed.containers.end(),
                                        [](const ObservedContainer& c) { return c.kind == Kind::Task && c.running(); });
  if (tasksRunning) tasksConfirmedGone_ = false;
  if (!draining || tasksConfirmedGone_ || confirming_ || tasksRunning || executor_.inFlight(Kind::Task)) return;
  confirming_ = true;  // before the spawn: a second tick must not start another
  spawnGuarded(io_.get_executor(), confirmDrained(), "drain confirmation", [this](auto& w, auto& e) { internalError(w, e); });
}

asio::awaitable<void> Agent::confirmDrained() {
  ScopedFlag running(confirming_);
  // A named selector, not a braced list in the call: GCC 12 cannot place an
  // initializer_list's backing array in a coroutine frame.
  runtime::LabelSelector tasks = executor_.managedSelector();
  tasks[label::kKind] = "task";
  auto listed = co_await runtime_.list(std::move(tasks));
  if (!listed) {
    log_.warn("drain: could not confirm with the runtime: {}", listed.error().message);
    co_return;
  }
  const auto left = std::count_if(listed->begin(), listed->end(), [](const runtime::ContainerInfo& c) { return c.running(); });
  if (left == 0) {
    tasksConfirmedGone_ = true;
    log_.info("drain: the runtime confirms no application container is running");
  }
  wake();
}

// STATUS= for `systemctl status`, e.g. "ACTIVE: 3/3 daemons, 12 tasks"; READY=1 once the
// slot gate is open (or timed out).
void Agent::notifyServiceManager(const Plan& plan) {
  const auto up = std::count_if(plan.daemons.begin(), plan.daemons.end(), [](const DaemonStatus& d) { return d.ready; });
  const auto running = std::count_if(plan.tasks.begin(), plan.tasks.end(), [](const TaskStatus& t) { return t.status == Status::Running; });
  const std::string line = fmt::format("{}: {}/{} daemons, {} tasks", toString(plan.phase), up, plan.daemons.size(), running);
  if (plan.memory.gateOpenedAt) notifier_.ready(line);
  notifier_.status(line);
}

void Agent::logChanges(const Plan& plan) {
  std::size_t critical = 0, criticalUp = 0;
  for (const auto& d : plan.daemons) {
    if (d.critical) ++critical;
    if (d.critical && d.ready) ++criticalUp;
  }
  for (const auto& d : plan.daemons) {
    std::string line = fmt::format("daemon {} r{} {}", d.family, d.revision, toString(d.status));
    if (d.health != runtime::Health::None) line += fmt::format(" ({})", runtime::toString(d.health));
    std::string& last = reported_[owned(Kind::Daemon, d.family)];
    if (line == last) continue;
    last = line;
    if (d.ready && d.startedAt) {
      line += fmt::format(" after {:.1f} s", secondsBetween(*d.startedAt, std::chrono::system_clock::now()));
      line += fmt::format("; {}/{} critical daemons up", criticalUp, critical);
    }
    if (!d.lastError.empty()) line += ": " + d.lastError;
    log_.about(LogFields::daemon(d.family)).at(d.lastError.empty() ? config::LogLevel::Info : config::LogLevel::Warn, line);
  }
  for (const auto& t : plan.tasks) {
    std::string line = fmt::format("task {} ({} r{}) {}", t.id, t.family, t.revision, toString(t.status));
    if (!t.stoppedReason.empty()) line += ": " + t.stoppedReason;
    std::string& last = reported_[owned(Kind::Task, t.id)];
    if (line == last) continue;
    last = line;
    // A task that stopped for any reason but a drain is something its owners must hear of.
    const bool bad = t.status == Status::Stopped && !t.stoppedReason.empty() && t.stoppedReason != "Instance drained";
    log_.about(LogFields::task(t.family, t.id)).at(bad ? config::LogLevel::Warn : config::LogLevel::Info, line);
  }
}

int Agent::printDryRun() {
  const ObservedState observed = executor_.observed();  // Inputs holds a reference: keep it alive
  Inputs in{desired_->state, observed};
  in.capacity = capacity();
  in.phase = Phase::Starting;
  in.bootAt = bootAt_;
  in.now = steady_clock::now();
  in.instanceId = config_.instance.id;
  in.taskPolicy = config::taskPolicyOf(config_);
  Plan plan = reconcile(in);
  std::cout << fmt::format("dry run: phase {}, capacity {} CPU / {} MiB, daemons reserve {} CPU / {} MiB, available {} CPU / {} MiB\n",
                           toString(plan.phase), plan.capacity.cpu, plan.capacity.memory, plan.daemonReserved.cpu,
                           plan.daemonReserved.memory, plan.available.cpu, plan.available.memory);
  for (const auto& n : plan.notes) std::cout << "note: " << n << '\n';
  if (plan.actions.empty()) std::cout << "nothing to do\n";
  for (const auto& a : plan.actions) std::cout << "would " << describe(a) << '\n';
  for (const auto& d : plan.daemons) std::cout << fmt::format("daemon {} r{}: {}\n", d.family, d.revision, toString(d.status));
  for (const auto& t : plan.tasks) {
    std::cout << fmt::format("task {}: {}{}\n", t.id, toString(t.status), t.stoppedReason.empty() ? "" : " (" + t.stoppedReason + ")");
  }
  return 0;
}

}  // namespace daemonlet::agent
