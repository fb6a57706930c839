#include "agent/core/Reconciler.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "agent/core/ContainerSpecBuilder.h"
#include "config/Resources.h"

namespace daemonlet::agent {
namespace {

using config::ContainerDefinition;
using config::DependencyCondition;
using config::TaskDefinition;
using std::chrono::seconds;

// The containers of one copy of a daemon revision or of one task run.
// Views into the planner's inputs, which outlive it: grouping 1,000 tasks on every plan
// copies no string.
struct Group {
  std::string_view hash;
  std::int64_t revision = 0;
  Resources reservation;
  const std::vector<std::string>* hostPorts = nullptr;
  std::vector<const ObservedContainer*> containers;

  const ObservedContainer* find(const std::string& name) const {
    for (const auto* c : containers) {
      if (c->container == name) return c;
    }
    return nullptr;
  }
  bool anyRunning() const {
    return std::any_of(containers.begin(), containers.end(), [](const auto* c) { return c->running(); });
  }
  // Holds resources and a name until every container has exited.
  bool live() const {
    return std::any_of(containers.begin(), containers.end(), [](const auto* c) { return !c->exited(); });
  }
  // Nothing runs, and nothing will unless the agent starts it: every container has exited
  // or was never started (an agent killed between create and start leaves such a copy).
  // A copy that is not wanted any more is removed then.
  bool stopped() const {
    return std::all_of(containers.begin(), containers.end(), [](const auto* c) { return c->exited() || c->neverStarted(); });
  }
  bool anyNeverStarted() const {
    return std::any_of(containers.begin(), containers.end(), [](const auto* c) { return c->neverStarted(); });
  }
  // The ids of one copy: a replacement or a retried rollout is a new copy with new ids.
  std::set<std::string> ids() const {
    std::set<std::string> out;
    for (const auto* c : containers) out.insert(c->id);
    return out;
  }
  // The same copy as the one `b` counted, even while its containers are being removed one
  // by one (a key of "the smallest id" changed under a removal and counted it twice).
  bool counted(const Backoff& b) const {
    return std::any_of(containers.begin(), containers.end(), [&](const auto* c) { return b.copy.count(c->id) > 0; });
  }
  // Running, and not failing a health check it declares: good enough to stand in for
  // its family while a new revision comes up.
  bool serving() const {
    return anyRunning() && std::none_of(containers.begin(), containers.end(), [](const auto* c) {
             // Not while a container never started: an init container running ahead of
             // its main one is not the service (chaos seed 397328385968).
             return c->neverStarted() || (c->running() && (c->health == runtime::Health::Unhealthy || c->health == runtime::Health::Starting));
           });
  }
};

using Groups = std::map<std::string_view, Group, std::less<>>;  // by hash
using Owners = std::map<std::string_view, Groups, std::less<>>;  // by daemon family or task id

Owners groupContainers(const ObservedState& observed, Kind kind) {
  Owners out;
  auto last = out.end();  // the containers of one copy mostly come one after another
  for (const auto& c : observed.containers) {
    if (c.kind != kind) continue;
    // The engine lists by id, the agent's own view by owner: then the end is the place.
    if (last == out.end() || last->first != c.owner()) last = out.try_emplace(out.end(), c.owner());
    auto [it, added] = last->second.try_emplace(c.hash);
    Group& g = it->second;
    if (added) {
      g.hash = c.hash;
      g.revision = c.revision;
      g.reservation = c.reservation;
      g.hostPorts = &c.hostPorts;
    }
    g.containers.push_back(&c);
  }
  return out;
}

// Where one copy stands against its definition.
struct Progress {
  bool ready = false;   // every essential container RUNNING (HEALTHY where declared)
  bool failed = false;  // an essential container exited, or a dependency never can be met
  std::string reason;
  bool oomKilled = false;
  int exitCode = 0;                       // of the essential container that ended it
  std::optional<WallTime> finishedAt;     // when it did
};

bool healthyEnough(const ContainerDefinition& def, const ObservedContainer& c) {
  return c.running() && (!def.healthCheck || c.health == runtime::Health::Healthy);
}

class Planner {
 public:
  explicit Planner(const Inputs& in) : in_(in) {
    plan_.memory = in.memory;
    daemons_ = groupContainers(in.observed, Kind::Daemon);
    tasks_ = groupContainers(in.observed, Kind::Task);
    // Looked up for every observed container: an index, not a scan (1,000 tasks).
    desiredDaemons_.reserve(in.desired.daemons.size());
    desiredTasks_.reserve(in.desired.tasks.size());
    for (const auto& d : in.desired.daemons) {
      desiredDaemons_.emplace(d.family, &d);
      adoptLegacyHash(daemons_, d.family, d);
    }
    for (const auto& t : in.desired.tasks) {
      desiredTasks_.emplace_back(t.id, &t);
      adoptLegacyHash(tasks_, t.id, t.definition);
    }
    // One vector, not a node per task; sources mostly give the tasks in id order already.
    const auto byId = [](const auto& a, const auto& b) { return a.first < b.first; };
    if (!std::is_sorted(desiredTasks_.begin(), desiredTasks_.end(), byId)) std::sort(desiredTasks_.begin(), desiredTasks_.end(), byId);
  }

  // Containers an older daemonlet labelled with the hash it computed for this very
  // definition are its current copy: an agent upgrade restarts nothing (P5).
  static void adoptLegacyHash(Owners& all, const std::string& owner, const TaskDefinition& def) {
    if (def.legacyHash.empty()) return;
    auto owned = all.find(owner);
    if (owned == all.end()) return;
    auto legacy = owned->second.find(def.legacyHash);
    if (legacy == owned->second.end() || owned->second.count(def.hash)) return;
    Group g = std::move(legacy->second);
    owned->second.erase(legacy);
    g.hash = def.hash;
    owned->second.emplace(def.hash, std::move(g));
  }

  Plan run() {
    const bool shutdown = in_.shutdownRequested;
    const bool draining = shutdown || in_.drainRequested || in_.desired.instanceStatus == config::InstanceStatus::Draining;
    plan_.phase = nextPhase(draining, shutdown);
    const bool stopDaemons = plan_.phase == Phase::StoppingDaemons || plan_.phase == Phase::Stopped;

    rollDaemons(stopDaemons);
    gateApplications();
    // Not on a view the engine has not confirmed since an outage: the daemons it shows as
    // up may have died with the engine (P2).
    appsMayStart_ = plan_.memory.gateOpenedAt && !in_.observedStale && (criticalDown_.empty() || plan_.memory.gateForced);
    if (!draining && plan_.phase == Phase::DaemonsPending && plan_.memory.gateOpenedAt) plan_.phase = Phase::Active;
    accountResources();
    if (draining) drain();
    else admitTasks();
    removeUndesired(stopDaemons, shutdown);
    forgetCopiesGone();
    forgetTasksGone();
    plan_.converged = converged();
    return std::move(plan_);
  }

 private:
  // ---- phase -------------------------------------------------------------------------

  bool anyRunning(Kind kind) const {
    return std::any_of(in_.observed.containers.begin(), in_.observed.containers.end(),
                       [&](const ObservedContainer& c) { return c.kind == kind && c.running(); });
  }

  // DESIGN 3.7: STARTING -> DAEMONS_PENDING -> ACTIVE -> DRAINING -> DRAINED ->
  // STOPPING_DAEMONS -> STOPPED. Daemons are stopped only on shutdown, and only once the
  // runtime has confirmed no application container is left (P4).
  Phase nextPhase(bool draining, bool shutdown) const {
    const Phase current = in_.phase;
    if (!draining) return in_.memory.gateOpenedAt ? Phase::Active : Phase::DaemonsPending;
    const bool appsLeft = anyRunning(Kind::Task) || in_.taskActionsInFlight || !in_.tasksConfirmedGone;
    if (current == Phase::StoppingDaemons || current == Phase::Stopped) {
      return anyRunning(Kind::Daemon) || in_.daemonActionsInFlight ? Phase::StoppingDaemons : Phase::Stopped;
    }
    if (appsLeft) return Phase::Draining;
    if (shutdown && current == Phase::Drained) return Phase::StoppingDaemons;
    return Phase::Drained;
  }

  // ---- daemons (P1, DESIGN 4) ---------------------------------------------------------

  void rollDaemons(bool stopAll) {
    for (const auto& def : in_.desired.daemons) {
      Groups& groups = daemons_[def.family];
      DaemonStatus status;
      status.family = def.family;
      status.revision = def.revision;
      status.hash = def.hash;
      status.critical = def.critical;
      status.restarts = in_.memory.restartCounts.count(def.family) ? in_.memory.restartCounts.at(def.family) : 0;
      if (stopAll) {
        // Removed once stopped, like drained tasks: a shutdown that is cancelled, or the
        // next boot, starts fresh copies instead of treating these exits as crashes.
        stopGroups(Kind::Daemon, def.family, groups, &def, "instance shutdown: applications drained");
        for (auto& [hash, g] : groups) {
          if (removable(Kind::Daemon, g)) removeGroup(Kind::Daemon, def.family, g);
        }
        status.status = anyLive(groups) ? Status::Stopping : Status::Stopped;
        fillContainers(status.containers, groups, def.hash);
        plan_.daemons.push_back(std::move(status));
        continue;
      }
      rollDaemon(def, groups, status);
      plan_.daemons.push_back(std::move(status));
    }
  }

  void rollDaemon(const TaskDefinition& def, Groups& groups, DaemonStatus& status) {
    auto currentIt = groups.find(def.hash);
    Group* current = currentIt == groups.end() ? nullptr : &currentIt->second;
    std::vector<Group*> olds;
    for (auto& [hash, g] : groups) {
      if (hash != def.hash) olds.push_back(&g);
    }
    // Newest revision first: that one stands in while the new one comes up.
    std::sort(olds.begin(), olds.end(), [](const Group* a, const Group* b) { return a->revision > b->revision; });
    Group* standIn = nullptr;
    for (Group* g : olds) {
      if (g->serving()) {
        standIn = g;
        break;
      }
    }

    // P1: the new copy may be created, but starts only once no copy but the stand-in is
    // live: an extra left by a crash, or a revision superseded while its start was under
    // way, goes first, so that old and new are all that ever run together.
    const bool extraLive = std::any_of(olds.begin(), olds.end(), [&](const Group* g) { return g != standIn && g->live(); });

    Backoff* failedRollout = nullptr;
    if (auto it = plan_.memory.failedRollouts.find(def.family); it != plan_.memory.failedRollouts.end() && it->second.hash == def.hash)
      failedRollout = &it->second;
    if (failedRollout) status.lastError = failedRollout->reason;

    Progress progress;
    if (!current) {
      const bool waiting = failedRollout && in_.now < failedRollout->retryAt;
      if (waiting) wakeBy(failedRollout->retryAt);
      if (!waiting) {
        if (standIn && standIn->revision == def.revision)
          note("daemon {}: definition changed but revision r{} was not bumped; rolling out all the same", def.family, def.revision);
        if (standIn) note("daemon {}: rolling out r{} beside r{}", def.family, def.revision, standIn->revision);
        static const Group empty;
        advance(Kind::Daemon, def.family, def, empty, "", !extraLive);
      }
      status.status = Status::Pending;
    } else {
      progress = advance(Kind::Daemon, def.family, def, *current, "", !extraLive);
      const TimePoint seen = seenSince(def.family + "/" + def.hash);
      if (!progress.failed && !progress.ready && standIn) wakeBy(seen + startTimeout(def) + std::chrono::milliseconds(1));
      if (!progress.failed && !progress.ready && standIn && in_.now - seen > startTimeout(def)) {
        progress.failed = true;
        progress.reason = fmt::format("not RUNNING{} within {} s", hasHealthCheck(def) ? " and HEALTHY" : "", startTimeout(def).count());
      }
      if (progress.failed && standIn) {
        failRollout(def, *current, progress.reason, standIn->revision);
        status.lastError = plan_.memory.failedRollouts[def.family].reason;
        status.status = Status::Activating;
      } else if (progress.failed) {
        restartDaemon(def, *current, progress);
        status.status = Status::Activating;
        status.lastError = progress.reason;
      } else {
        status.status = progress.ready ? Status::Running : Status::Activating;
        if (progress.ready) plan_.memory.failedRollouts.erase(def.family);
      }
    }

    status.ready = progress.ready;
    if (def.critical && !progress.ready && !standIn) criticalDown_.push_back(def.family);
    status.health = daemonHealth(def, current);
    if (current) status.startedAt = firstStarted(*current);
    if (status.lastError.empty()) status.lastError = createError(Kind::Daemon, def);
    fillContainers(status.containers, groups, def.hash);

    // P1: once the new copy is up every other copy goes; while it comes up, only the
    // newest serving old copy stays.
    for (Group* g : olds) {
      if (progress.ready) stopGroup(Kind::Daemon, def.family, *g, nullptr, fmt::format("replaced by r{}", def.revision));
      else if (g != standIn) stopGroup(Kind::Daemon, def.family, *g, nullptr, "extra copy");
      if (removable(Kind::Daemon, *g)) removeGroup(Kind::Daemon, def.family, *g);
    }
  }

  void failRollout(const TaskDefinition& def, const Group& current, const std::string& reason, std::int64_t keeping) {
    Backoff& b = plan_.memory.failedRollouts[def.family];
    if (b.hash != def.hash) b = Backoff{};
    if (current.counted(b)) {
      // Already counted: this copy is still being stopped and removed.
      stopGroup(Kind::Daemon, def.family, current, &def, "failed rollout");
      for (const auto* c : current.containers) {
        if (c->exited() || c->neverStarted()) addRemove(Kind::Daemon, def.family, *c);
      }
      return;
    }
    b.copy = current.ids();
    b.failures += 1;
    b.hash = def.hash;
    b.reason = fmt::format("rollout of r{} failed: {}", def.revision, reason);
    b.retryAt = in_.now + backoffDelay(b.failures);
    note("daemon {}: {}; r{} keeps running; retry in {} s", def.family, b.reason, keeping, backoffDelay(b.failures).count());
    stopGroup(Kind::Daemon, def.family, current, &def, "failed rollout");
    for (const auto* c : current.containers) {
      if (c->exited() || c->neverStarted()) addRemove(Kind::Daemon, def.family, *c);
    }
  }

  // An essential container exited with no older copy to stand in: start it again after
  // the backoff. Application tasks keep running (P2: the gate opened once per boot).
  void restartDaemon(const TaskDefinition& def, const Group& current, const Progress& progress) {
    Backoff& b = plan_.memory.restarts[def.family];
    if (in_.now < b.retryAt) return wakeBy(b.retryAt);
    if (b.failures > 0 && in_.now - b.retryAt > std::chrono::minutes(10)) b.failures = 0;  // stable for a while
    b.failures += 1;
    b.reason = progress.reason;
    b.retryAt = in_.now + backoffDelay(b.failures);
    plan_.memory.restartCounts[def.family] += 1;
    note("daemon {} r{}: {}; restarting (attempt {}, next backoff {} s)", def.family, def.revision, progress.reason,
         b.failures, backoffDelay(b.failures).count());
    if (const ObservedContainer* holder = current.find(kNetworkHolder); holder && holder->exited()) {
      // Its namespace is gone: the copy starts afresh rather than in place.
      stopGroup(Kind::Daemon, def.family, current, &def, "network namespace holder exited");
      if (!current.live()) removeGroup(Kind::Daemon, def.family, current);
      return;
    }
    std::set<std::string> started;  // container names: each starts once in this plan
    for (const auto& c : def.containers) {
      const ObservedContainer* oc = current.find(c.name);
      if (oc && oc->running()) continue;
      bool blocked = false;
      for (const auto& d : c.dependsOn) {
        const ObservedContainer* dep = current.find(d.containerName);
        if (dep && dep->exited() && dependencyProblem(d, dep) == "never") {
          // An init container that failed (or died with the engine) is not essential, so
          // nothing restarts it by itself: it runs again, and what waits on it starts after.
          blocked = true;
          if (started.insert(d.containerName).second) addStart(Kind::Daemon, def.family, def, *dep, "dependency runs again");
        }
      }
      if (!blocked && oc && oc->exited() && c.essential && started.insert(c.name).second)
        addStart(Kind::Daemon, def.family, def, *oc, "restart after exit");
    }
  }

  // ---- one copy toward running, in dependsOn order --------------------------------------

  // Creates what is missing and starts what may start. `group` may be empty.
  Progress advance(Kind kind, const std::string& owner, const TaskDefinition& def, const Group& group, const std::string& taskId,
                   bool mayStart = true) {
    Progress p = progressOf(def, group);
    if (def.networkMode == config::NetworkMode::Awsvpc && !networkHolderUp(kind, owner, def, group, taskId)) return p;
    for (const auto& c : def.containers) {
      const ObservedContainer* oc = group.find(c.name);
      // A name costs a SHA-256: not computed for the running copies of a steady state.
      if (oc && oc->running() && !plan_.memory.createFailures.empty())
        plan_.memory.createFailures.erase(containerName(kind, def, taskId, c.name, in_.instanceId));  // recovered: no stale error
      if (oc && !oc->neverStarted()) continue;
      const std::string name = containerName(kind, def, taskId, c.name, in_.instanceId);
      std::string blocked;
      for (const auto& d : c.dependsOn) {
        const ObservedContainer* dep = group.find(d.containerName);
        const std::string why = dependencyProblem(d, dep);
        if (why == "never") {
          p.failed = true;
          p.reason = fmt::format("container {} cannot start: {} exited with code {} ({} required)", c.name, d.containerName,
                                 dep ? dep->exitCode : -1, config::toString(d.condition));
        }
        if (!why.empty()) blocked = why;
      }
      for (const auto& v : c.volumesFrom) {
        if (!group.find(v.sourceContainer)) blocked = "volumes";
      }
      if (backingOff(name)) continue;
      if (!oc) {
        // Created as soon as its volume sources exist, started once its dependencies allow.
        if (blocked != "volumes") addCreate(kind, owner, def, c.name, name);
      } else if (blocked.empty() && mayStart && startKeepsFailing(name)) {
        // It never ran, so nothing of it is lost: the engine may hold state of a start it
        // died in ("id already in use") that no further start gets past.
        addAction(Action::Type::Remove, kind, owner, *oc, fmt::format("its start failed {} times before it ever ran; made anew", kStartsBeforeRecreate));
        plan_.memory.createFailures[name].failures = 0;  // the new one gets its own tries; the backoff stays
      } else if (blocked.empty() && mayStart) {
        addStart(kind, owner, def, *oc, "dependencies met");
      }
    }
    return p;
  }

  // awsvpc: the copy's namespace exists before any of its containers is created in it.
  bool networkHolderUp(Kind kind, const std::string& owner, const TaskDefinition& def, const Group& group, const std::string& taskId) {
    const ObservedContainer* holder = group.find(kNetworkHolder);
    const std::string name = containerName(kind, def, taskId, kNetworkHolder, in_.instanceId);
    if (holder && holder->running()) {
      plan_.memory.createFailures.erase(name);
      return true;
    }
    if (backingOff(name)) return false;
    if (!holder) addCreate(kind, owner, def, kNetworkHolder, name);
    else if (holder->neverStarted()) addStart(kind, owner, def, *holder, "the copy's network namespace first");
    return false;
  }

  // "" = satisfied, "wait" = not yet, "never" = cannot be any more.
  static std::string dependencyProblem(const config::ContainerDependency& d, const ObservedContainer* dep) {
    if (!dep) return "wait";
    switch (d.condition) {
      case DependencyCondition::Start: return dep->running() || dep->exited() ? "" : "wait";
      case DependencyCondition::Complete: return dep->exited() ? "" : "wait";
      case DependencyCondition::Success: return !dep->exited() ? "wait" : dep->exitCode == 0 ? "" : "never";
      case DependencyCondition::Healthy:
        if (dep->exited()) return "never";
        return dep->health == runtime::Health::Healthy ? "" : "wait";
    }
    return "wait";
  }

  // ---- the slot gate (P2) ---------------------------------------------------------------

  void gateApplications() {
    if (plan_.memory.gateOpenedAt) return;
    int critical = 0, up = 0;
    std::vector<std::string> waiting;
    for (const auto& d : plan_.daemons) {
      if (!d.critical) continue;
      ++critical;
      // Only the desired revision counts. An older copy may look up while the engine is
      // already stopping it for an agent that died mid-rollout, which this agent cannot see.
      if (d.ready) ++up;
      else waiting.push_back(d.family);
    }
    if (up == critical) {
      plan_.memory.gateForced = false;
      plan_.memory.gateOpenedAt = in_.now;
      plan_.memory.gateReason = fmt::format("{}/{} critical daemons up", up, critical);
      note("slot gate open: {}", plan_.memory.gateReason);
    } else if (in_.settings.slotGateTimeout.count() > 0 && in_.now - in_.bootAt < in_.settings.slotGateTimeout) {
      wakeBy(in_.bootAt + in_.settings.slotGateTimeout);
    } else if (in_.settings.slotGateTimeout.count() > 0) {
      plan_.memory.gateForced = true;
      plan_.memory.gateOpenedAt = in_.now;
      plan_.memory.gateReason = fmt::format("timeout after {} s with {}/{} critical daemons up (waiting for {})",
                                            in_.settings.slotGateTimeout.count(), up, critical, fmt::join(waiting, ", "));
      note("WARNING: slot gate opened by slotGate.timeoutSeconds: {}", plan_.memory.gateReason);
    }
  }

  // ---- resources (P3) -----------------------------------------------------------------

  void accountResources() {
    plan_.capacity = in_.capacity;
    Resources daemons;
    for (const auto& def : in_.desired.daemons) daemons += config::reservationOf(def);
    // Overlap during a rollout: both copies hold their reservation.
    for (const auto& [family, groups] : daemons_) {
      const TaskDefinition* def = desiredDaemon(family);
      for (const auto& [hash, g] : groups) {
        if ((!def || hash != def->hash) && g.live()) daemons += g.reservation;
      }
    }
    plan_.daemonReserved = daemons;
    Resources used;
    for (const auto& [id, groups] : tasks_) {
      for (const auto& [hash, g] : groups) {
        if (g.live()) used += g.reservation;
        if (g.live() && !g.hostPorts->empty()) holdPorts(*g.hostPorts, fmt::format("task {}", id));
      }
    }
    available_ = in_.capacity - daemons - used;
    for (const auto& [family, groups] : daemons_) {
      for (const auto& [hash, g] : groups) {
        if (g.live() && !g.hostPorts->empty()) holdPorts(*g.hostPorts, fmt::format("daemon {}", family));
      }
    }
    for (const auto& def : in_.desired.daemons) holdPorts(hostPortsOf(def), "daemon " + def.family);
  }

  void holdPorts(const std::vector<std::string>& ports, const std::string& holder) {
    for (const auto& p : ports) portsHeld_.emplace(p, holder);
  }

  // The first of `ports` that another copy holds, with its holder; nullopt when all are free.
  std::optional<std::pair<std::string, std::string>> portTaken(const std::vector<std::string>& ports) const {
    for (const auto& p : ports) {
      if (auto it = portsHeld_.find(p); it != portsHeld_.end()) return *it;
    }
    return std::nullopt;
  }

  // The engine refused one of the task's host ports (something outside daemonlet holds
  // it): the retry time, while its backoff runs.
  std::optional<TimePoint> portsRefused(const config::ApplicationTask& task) {
    if (plan_.memory.createFailures.empty()) return std::nullopt;
    std::vector<std::string> names{containerName(Kind::Task, task.definition, task.id, kNetworkHolder, in_.instanceId)};
    for (const auto& c : task.definition.containers) names.push_back(containerName(Kind::Task, task.definition, task.id, c.name, in_.instanceId));
    for (const auto& n : names) {
      auto it = plan_.memory.createFailures.find(n);
      if (it != plan_.memory.createFailures.end() && it->second.reason.rfind(kPortsInUse, 0) == 0 && in_.now < it->second.retryAt) {
        wakeBy(it->second.retryAt);
        return it->second.retryAt;
      }
    }
    return std::nullopt;
  }

  // ---- application tasks (P2, P3) ------------------------------------------------------

  void admitTasks() {
    const bool gateOpen = plan_.memory.gateOpenedAt.has_value();
    plan_.tasks.reserve(desiredTasks_.size());
    // Both in id order: walked side by side, not looked up (1,000 tasks on every plan).
    auto observed = tasks_.begin();
    for (const auto& [id, task] : desiredTasks_) {
      const TaskDefinition& def = task->definition;
      while (observed != tasks_.end() && observed->first < task->id) ++observed;
      if (observed == tasks_.end() || observed->first != task->id) observed = tasks_.emplace_hint(observed, task->id, Groups{});
      Groups& groups = observed->second;
      TaskStatus status = taskStatus(*task);
      if (refuseByPolicy(*task, groups, status)) {
        plan_.tasks.push_back(std::move(status));
        continue;
      }
      Group* current = nullptr;
      bool staleLeft = false;
      if (portsRefused(*task)) {
        // Its copy goes, so that the ports it did get are free again; tried anew after the backoff.
        for (auto& [hash, g] : groups) {
          stopGroup(Kind::Task, task->id, g, nullptr, "a host port is in use");
          for (const auto* c : g.containers) {
            if (c->exited() || c->neverStarted()) addRemove(Kind::Task, task->id, *c);
          }
        }
        status.status = Status::Stopped;
        status.stoppedReason = kPortsInUse;
        fillContainers(status.containers, groups, def.hash);
        plan_.tasks.push_back(std::move(status));
        continue;
      }
      for (auto& [hash, g] : groups) {
        if (hash == def.hash) {
          current = &g;
          continue;
        }
        // A task changed under the same id: the old run goes first, no overlap.
        stopGroup(Kind::Task, task->id, g, nullptr, "definition changed");
        if (removable(Kind::Task, g)) removeGroup(Kind::Task, task->id, g);
        staleLeft = true;
      }
      if (current) {
        // ECS restartPolicy: while a critical daemon is down the restart waits, and the exit
        // is not taken for the task's end (P2: running applications are never stopped).
        const bool restarting = restartByPolicy(*task, *current, /*act=*/appsMayStart_);
        Progress p = appsMayStart_ ? advance(Kind::Task, task->id, def, *current, task->id) : progressOf(def, *current);
        if (restarting) p.failed = false;
        if (p.failed) {
          stopGroup(Kind::Task, task->id, *current, &def, "essential container exited");
          status.stoppedReason = "Essential container in task exited: " + p.reason;
          if (current->anyRunning()) {
            status.status = Status::Stopping;
          } else {
            status.status = Status::Stopped;
            replaceStopped(*task, *current, p);
          }
        } else if (auto cannot = cannotStart(*task); !p.ready && !cannot.empty()) {
          status.status = Status::Stopped;
          status.stoppedReason = cannot;
        } else {
          status.status = p.ready ? Status::Running : Status::Activating;
          if (p.ready) forgiveAfterTenMinutes(task->id);
        }
        fillContainers(status.containers, groups, def.hash);
        if (const ObservedContainer* holder = current->find(kNetworkHolder)) status.address = holder->address;
      } else if (staleLeft || !gateOpen) {
        status.status = Status::Pending;
      } else if (auto cannot = cannotStart(*task); !cannot.empty()) {
        // A secret, volume or log driver it needs is missing: stopped before it started,
        // holding nothing, and tried again when the backoff ends.
        status.status = Status::Stopped;
        status.stoppedReason = cannot;
      } else {
        const Resources need = config::reservationOf(def);
        const auto ports = hostPortsOf(def);
        const auto taken = portTaken(ports);
        if (!need.fitsIn(available_)) {
          status.status = Status::Stopped;
          status.stoppedReason = need.memory > available_.memory ? "RESOURCE:MEMORY" : "RESOURCE:CPU";
        } else if (taken) {
          status.status = Status::Stopped;
          status.stoppedReason = kPortsInUse;
          note("task {}: not admitted: host port {} is held by {}", task->id, taken->first, taken->second);
        } else if (!appsMayStart_) {
          // P2 for every start: the gate opened once, but a critical daemon is down again
          // (an engine restart, a power loss): it comes back first.
          available_ -= need;
          holdPorts(ports, "task " + task->id);
          status.status = Status::Pending;
        } else {
          available_ -= need;
          holdPorts(ports, "task " + task->id);
          note("task {}: admitted ({} CPU units, {} MiB)", task->id, need.cpu, need.memory);
          static const Group empty;
          advance(Kind::Task, task->id, def, empty, task->id);
          status.status = Status::Activating;
        }
      }
      auto restarts = plan_.memory.taskRestartCounts.find(task->id);
      if (restarts != plan_.memory.taskRestartCounts.end()) status.restarts = restarts->second;
      plan_.tasks.push_back(std::move(status));
    }
    plan_.available = available_;
  }

  // DESIGN 3.2 taskPolicy: a definition outside the policy is never started. A copy that
  // runs already (the policy is new or was tightened since it started, or the definition
  // changed to one outside it) keeps running: P5, an agent's upgrade or config change
  // never stops an application. It is reported (a warning, the task's policyProblem) and
  // is not replaced or restarted; once it has stopped on its own the task is STOPPED.
  bool refuseByPolicy(const config::ApplicationTask& task, Groups& groups, TaskStatus& status) {
    const auto refusals = config::checkTaskPolicy(in_.taskPolicy, task.definition);
    if (refusals.empty()) return false;
    std::vector<std::string> reasons;
    for (const auto& r : refusals) reasons.push_back(r.format());
    const std::string refusal = fmt::format("TaskPolicy: {}", fmt::join(reasons, "; "));
    if (anyRunningIn(groups)) {
      status.status = Status::Running;
      status.policyProblem = refusal + "; the running copy is kept, no new copy starts";
      // The same words in every plan: the agent logs a note once while it repeats.
      note("WARNING: task {}: running outside taskPolicy: {}", task.id, status.policyProblem);
      const std::string_view* runningHash = nullptr;
      for (const auto& [hash, g] : groups) {
        if (g.anyRunning()) runningHash = &hash;
      }
      fillContainers(status.containers, groups, runningHash ? *runningHash : std::string_view(task.definition.hash));
      return true;
    }
    for (auto& [hash, g] : groups) {
      if (removable(Kind::Task, g)) removeGroup(Kind::Task, task.id, g);
    }
    status.status = Status::Stopped;
    status.stoppedReason = refusal;
    fillContainers(status.containers, groups, task.definition.hash);
    return true;
  }

  // DESIGN 3.4: a task whose essential container stopped on its own is replaced by fresh
  // containers after backoff, unless its restart mode says otherwise. Exits caused by the
  // engine or the host going away are failures whatever their code.
  void replaceStopped(const config::ApplicationTask& task, const Group& g, const Progress& p) {
    const bool engineCaused = exitedWithEngine(task.id, p.finishedAt);
    if (task.restart == config::TaskRestart::Never) return;
    if (task.restart == config::TaskRestart::OnFailure && p.exitCode == 0 && !engineCaused) return;
    Backoff& b = plan_.memory.taskRestarts[task.id];
    if (!g.counted(b)) {
      b.copy = g.ids();
      b.removing = false;
      b.failures += 1;
      b.upSince.reset();
      b.reason = p.reason + (engineCaused ? " (the engine or host went away)" : "");
      b.retryAt = in_.now + backoffDelay(b.failures);
      note("task {}: {}; replacing it with fresh containers in {} s (restart: {}, attempt {})", task.id, b.reason,
           backoffDelay(b.failures).count(), config::toString(task.restart), b.failures);
    }
    if (in_.now < b.retryAt) return wakeBy(b.retryAt);
    if (!appsMayStart_) return;  // a daemon coming up wakes the loop
    removeGroup(Kind::Task, task.id, g);  // the next plan admits it again: fresh containers
    if (!b.removing) plan_.memory.taskRestartCounts[task.id] += 1;  // once per copy, not per plan
    b.removing = true;
  }

  // The backoff resets after 10 minutes of running (DESIGN 3.4).
  void forgiveAfterTenMinutes(const std::string& taskId) {
    auto it = plan_.memory.taskRestarts.find(taskId);
    if (it == plan_.memory.taskRestarts.end()) return;
    if (!it->second.upSince) it->second.upSince = in_.now;
    if (in_.now - *it->second.upSince >= std::chrono::minutes(10)) plan_.memory.taskRestarts.erase(it);
    else wakeBy(*it->second.upSince + std::chrono::minutes(10));
  }

  bool exitedWithEngine(const std::string& taskId, const std::optional<WallTime>& finishedAt) const {
    if (!finishedAt) return false;
    // Before this boot: the host went away, but only if the task was still running then;
    // a one-shot task that had finished before the reboot stays finished.
    if (in_.hostBootAt && *finishedAt < *in_.hostBootAt) return in_.runningAtLastSave.count(taskId) > 0;
    constexpr auto margin = std::chrono::seconds(2);
    return std::any_of(in_.engineOutages.begin(), in_.engineOutages.end(),
                       [&](const EngineOutage& o) { return *finishedAt >= o.from - margin && *finishedAt <= o.to + margin; });
  }

  // ECS restartPolicy: an exited container whose policy is enabled starts again, unless
  // its exit code is ignored or it ran less than restartAttemptPeriod (default 300 s),
  // which keeps a crash loop from spinning. True when an essential container restarts.
  bool restartByPolicy(const config::ApplicationTask& task, const Group& group, bool act) {
    bool essentialRestarted = false;
    for (const auto& c : task.definition.containers) {
      const ObservedContainer* oc = group.find(c.name);
      if (!oc || !oc->exited() || !c.restartPolicy.enabled) continue;
      const auto& ignored = c.restartPolicy.ignoredExitCodes;
      if (std::find(ignored.begin(), ignored.end(), oc->exitCode) != ignored.end()) continue;
      const seconds period(c.restartPolicy.restartAttemptPeriodSeconds.value_or(300));
      if (!oc->startedAt || !oc->finishedAt || *oc->finishedAt - *oc->startedAt < period) continue;
      essentialRestarted = essentialRestarted || c.essential;
      // A restart the engine refused waits out its backoff; the task stays up meanwhile.
      if (!act || backingOff(oc->name)) continue;
      note("task {}: container {} exited with code {} after running {} s; restarting (restartPolicy)", task.id, c.name, oc->exitCode,
           std::chrono::duration_cast<seconds>(*oc->finishedAt - *oc->startedAt).count());
      addStart(Kind::Task, task.id, task.definition, *oc, "restartPolicy");
    }
    return essentialRestarted;
  }

  // Ready when every essential container runs (healthy where declared); failed when one
  // of them exited.
  static Progress progressOf(const TaskDefinition& def, const Group& group) {
    Progress p;
    p.ready = true;
    for (const auto& c : def.containers) {
      const ObservedContainer* oc = group.find(c.name);
      if (!c.essential) continue;
      if (!oc || !healthyEnough(c, *oc)) p.ready = false;
      if (oc && oc->exited()) {
        p.failed = true;
        p.exitCode = oc->exitCode;
        p.finishedAt = oc->finishedAt;
        p.oomKilled = p.oomKilled || oc->oomKilled;
        p.reason = fmt::format("essential container {} exited with code {}{}", c.name, oc->exitCode, oc->oomKilled ? " (OOM-killed)" : "");
      }
    }
    if (def.networkMode == config::NetworkMode::Awsvpc) {
      const ObservedContainer* holder = group.find(kNetworkHolder);
      if (!holder || !holder->running()) p.ready = false;
      if (holder && holder->exited()) {
        p.failed = true;
        p.exitCode = holder->exitCode;
        p.finishedAt = holder->finishedAt;
        p.reason = fmt::format("the network namespace holder exited with code {}", holder->exitCode);
      }
    }
    return p;
  }

  // ---- drain (P4) -------------------------------------------------------------------------

  void drain() {
    for (const auto& task : in_.desired.tasks) {
      Groups& groups = tasks_[task.id];
      TaskStatus status = taskStatus(task);
      for (auto& [hash, g] : groups) {
        stopGroup(Kind::Task, task.id, g, hash == task.definition.hash ? &task.definition : nullptr, "instance draining");
        // Removed once stopped: an exited container would read as "the task ended on its
        // own" and keep it from starting again after the drain or the next boot.
        if (removable(Kind::Task, g)) removeGroup(Kind::Task, task.id, g);
      }
      status.status = anyRunningIn(groups) ? Status::Deactivating : Status::Stopped;
      if (status.status == Status::Stopped) status.stoppedReason = "Instance drained";
      fillContainers(status.containers, groups, task.definition.hash);
      plan_.tasks.push_back(std::move(status));
    }
    plan_.available = available_;
  }

  // ---- removals ---------------------------------------------------------------------------

  // Tasks and daemons gone from the desired state: stopped, then removed; tasks first.
  // During a shutdown, undesired daemons too wait for the confirmed drain (P4).
  void removeUndesired(bool daemonsAlreadyStopping, bool shutdown) {
    bool undesiredTaskRunning = false;
    auto desired = desiredTasks_.begin();  // both in id order: side by side
    for (auto& [id, groups] : tasks_) {
      while (desired != desiredTasks_.end() && desired->first < id) ++desired;
      if (desired != desiredTasks_.end() && desired->first == id) continue;
      for (auto& [hash, g] : groups) {
        stopGroup(Kind::Task, id, g, nullptr, "no longer desired");
        if (removable(Kind::Task, g)) removeGroup(Kind::Task, id, g);
        undesiredTaskRunning = undesiredTaskRunning || g.anyRunning();
      }
    }
    for (auto& [family, groups] : daemons_) {
      if (desiredDaemon(family)) continue;
      DaemonStatus status;
      status.family = family;
      status.status = anyLive(groups) ? Status::Stopping : Status::Stopped;
      if (!groups.empty()) status.revision = groups.begin()->second.revision;
      fillContainers(status.containers, groups, "");
      plan_.daemons.push_back(std::move(status));
      if ((undesiredTaskRunning || shutdown) && !daemonsAlreadyStopping) continue;
      for (auto& [hash, g] : groups) {
        stopGroup(Kind::Daemon, family, g, nullptr, "no longer desired");
        if (removable(Kind::Daemon, g)) removeGroup(Kind::Daemon, family, g);
      }
    }
  }

  // ---- actions ------------------------------------------------------------------------------

  void stopGroups(Kind kind, std::string_view owner, const Groups& groups, const TaskDefinition* def, const std::string& why) {
    for (const auto& [hash, g] : groups) stopGroup(kind, owner, g, def && hash == def->hash ? def : nullptr, why);
  }

  void stopGroup(Kind kind, std::string_view owner, const Group& g, const TaskDefinition* def, const std::string& why) {
    // awsvpc: the namespace holder goes last, as ECS stops its pause container last: the
    // copy's network and host ports stay while its containers wind down.
    const bool othersRunning = std::any_of(g.containers.begin(), g.containers.end(),
                                           [](const auto* c) { return c->running() && c->container != kNetworkHolder; });
    for (const auto* c : g.containers) {
      if (!c->running() || (othersRunning && c->container == kNetworkHolder)) continue;
      Action& a = addAction(Action::Type::Stop, kind, owner, *c, why);
      a.stopTimeout = in_.settings.defaultStopTimeout;
      if (def) {
        if (const ContainerDefinition* cd = def->container(c->container); cd && cd->stopTimeoutSeconds) a.stopTimeout = seconds(*cd->stopTimeoutSeconds);
      }
    }
  }

  // A copy that is not wanted goes once nothing of it runs. One with a container never
  // started waits while steps of its kind are under way: one may be that container's
  // start, and removing its siblings meanwhile would leave a part that looks whole.
  bool removable(Kind kind, const Group& g) const {
    const bool inFlight = kind == Kind::Daemon ? in_.daemonActionsInFlight : in_.taskActionsInFlight;
    return g.stopped() && !(g.anyNeverStarted() && inFlight);
  }

  void removeGroup(Kind kind, std::string_view owner, const Group& g) {
    for (const auto* c : g.containers) addRemove(kind, owner, *c);
  }

  void addRemove(Kind kind, std::string_view owner, const ObservedContainer& c) { addAction(Action::Type::Remove, kind, owner, c, "stopped"); }

  // With the copy's definition: the executor makes the copy's parent cgroup again, with its
  // limits, if it went while the container was down.
  void addStart(Kind kind, std::string_view owner, const TaskDefinition& def, const ObservedContainer& c, const std::string& why) {
    addAction(Action::Type::Start, kind, owner, c, why).definition = def;
  }

  // Start, Stop and Remove act on a container that exists.
  Action& addAction(Action::Type type, Kind kind, std::string_view owner, const ObservedContainer& c, const std::string& why) {
    Action a;
    a.type = type;
    a.kind = kind;
    a.owner = owner;
    a.containerId = c.id;
    a.containerName = c.name;
    a.reason = why;
    plan_.actions.push_back(std::move(a));
    return plan_.actions.back();
  }

  void addCreate(Kind kind, std::string_view owner, const TaskDefinition& def, const std::string& container, const std::string& name) {
    Action a;
    a.type = Action::Type::Create;
    a.kind = kind;
    a.owner = owner;
    a.containerName = name;
    a.container = container;
    a.definition = def;
    a.reason = fmt::format("{} r{}", def.family, def.revision);
    plan_.actions.push_back(std::move(a));
  }

  static constexpr int kStartsBeforeRecreate = 3;
  bool startKeepsFailing(const std::string& containerName) const {
    auto it = plan_.memory.createFailures.find(containerName);
    return it != plan_.memory.createFailures.end() && it->second.failures >= kStartsBeforeRecreate;
  }

  bool backingOff(const std::string& containerName) {
    auto it = plan_.memory.createFailures.find(containerName);
    if (it == plan_.memory.createFailures.end() || in_.now >= it->second.retryAt) return false;
    wakeBy(it->second.retryAt);
    return true;
  }

  // The reason a task cannot start as defined, while its create or start backs off.
  std::string cannotStart(const config::ApplicationTask& task) {
    if (plan_.memory.createFailures.empty()) return "";
    std::vector<std::string> parts;
    for (const auto& c : task.definition.containers) parts.push_back(c.name);
    if (task.definition.networkMode == config::NetworkMode::Awsvpc) parts.push_back(kNetworkHolder);  // created first
    for (const auto& part : parts) {
      const std::string name = containerName(Kind::Task, task.definition, task.id, part, in_.instanceId);
      auto it = plan_.memory.createFailures.find(name);
      if (it == plan_.memory.createFailures.end() || !it->second.stopsTask) continue;
      if (backingOff(name)) return it->second.reason;
    }
    return "";
  }

  std::string createError(Kind kind, const TaskDefinition& def) const {
    if (plan_.memory.createFailures.empty()) return "";
    for (const auto& c : def.containers) {
      auto it = plan_.memory.createFailures.find(containerName(kind, def, "", c.name, in_.instanceId));
      if (it != plan_.memory.createFailures.end()) return it->second.reason;
    }
    return "";
  }

  // ---- reporting ----------------------------------------------------------------------------

  TaskStatus taskStatus(const config::ApplicationTask& task) const {
    TaskStatus s;
    s.id = task.id;
    s.family = task.definition.family;
    s.revision = task.definition.revision;
    return s;
  }

  static void fillContainers(std::vector<ContainerStatus>& out, const Groups& groups, std::string_view preferredHash) {
    for (const auto& [hash, g] : groups) {
      if (!preferredHash.empty() && hash != preferredHash && groups.count(preferredHash)) continue;
      out.reserve(out.size() + g.containers.size());
      for (const auto* c : g.containers) {
        ContainerStatus s{c->container, c->id, runtime::toString(c->state), std::nullopt};
        if (c->exited()) s.exitCode = c->exitCode;
        out.push_back(std::move(s));
      }
    }
  }

  static runtime::Health daemonHealth(const TaskDefinition& def, const Group* g) {
    if (!hasHealthCheck(def)) return runtime::Health::None;
    if (!g) return runtime::Health::Starting;
    for (const auto& c : def.containers) {
      const ObservedContainer* oc = g->find(c.name);
      if (c.healthCheck && (!oc || oc->health != runtime::Health::Healthy)) return oc ? oc->health : runtime::Health::Starting;
    }
    return runtime::Health::Healthy;
  }

  static bool hasHealthCheck(const TaskDefinition& def) {
    return std::any_of(def.containers.begin(), def.containers.end(), [](const auto& c) { return c.healthCheck.has_value(); });
  }

  seconds startTimeout(const TaskDefinition& def) const {
    seconds longest{0};
    for (const auto& c : def.containers) {
      if (c.startTimeoutSeconds) longest = std::max(longest, seconds(*c.startTimeoutSeconds));
    }
    return longest.count() > 0 ? longest : in_.settings.defaultStartTimeout;
  }

  static std::optional<WallTime> firstStarted(const Group& g) {
    std::optional<WallTime> first;
    for (const auto* c : g.containers) {
      if (c->startedAt && (!first || *c->startedAt < *first)) first = c->startedAt;
    }
    return first;
  }

  static bool anyLive(const Groups& groups) {
    return std::any_of(groups.begin(), groups.end(), [](const auto& kv) { return kv.second.live(); });
  }
  static bool anyRunningIn(const Groups& groups) {
    return std::any_of(groups.begin(), groups.end(), [](const auto& kv) { return kv.second.anyRunning(); });
  }

  bool converged() const {
    if (!plan_.actions.empty()) return false;
    for (const auto& d : plan_.daemons) {
      const bool settled = desiredDaemon(d.family) ? (d.ready || plan_.phase == Phase::Stopped) : d.status == Status::Stopped;
      if (!settled) return false;
    }
    for (const auto& [family, groups] : daemons_) {
      const TaskDefinition* def = desiredDaemon(family);
      if (def && groups.size() > 1) return false;  // an old copy is still around
    }
    for (const auto& t : plan_.tasks) {
      if (t.status != Status::Running && t.status != Status::Stopped) return false;
    }
    return plan_.phase == Phase::Active || plan_.phase == Phase::Drained || plan_.phase == Phase::Stopped;
  }

  // The loop sleeps until an event or the earliest deadline a decision here depends on.
  void wakeBy(TimePoint at) {
    if (at > in_.now && (!plan_.wakeAt || at < *plan_.wakeAt)) plan_.wakeAt = at;
  }

  // When this agent first saw a copy: start timeouts run on the steady clock.
  TimePoint seenSince(const std::string& copy) {
    seenCopies_.insert(copy);
    return plan_.memory.copySeenAt.emplace(copy, in_.now).first->second;
  }
  // A task that leaves the desired state takes its backoff with it: re-added, it starts afresh.
  void forgetTasksGone() {
    std::erase_if(plan_.memory.taskRestarts, [&](const auto& kv) { return !desiredTask(kv.first); });
    std::erase_if(plan_.memory.taskRestartCounts, [&](const auto& kv) { return !desiredTask(kv.first); });
  }

  void forgetCopiesGone() {
    for (auto it = plan_.memory.copySeenAt.begin(); it != plan_.memory.copySeenAt.end();) {
      it = seenCopies_.count(it->first) ? std::next(it) : plan_.memory.copySeenAt.erase(it);
    }
  }

  template <class... Args>
  void note(fmt::format_string<Args...> f, Args&&... args) {
    plan_.notes.push_back(fmt::format(f, std::forward<Args>(args)...));
  }

  const config::ApplicationTask* desiredTask(std::string_view id) const {
    auto it = std::lower_bound(desiredTasks_.begin(), desiredTasks_.end(), id, [](const auto& e, std::string_view k) { return e.first < k; });
    return it == desiredTasks_.end() || it->first != id ? nullptr : it->second;
  }
  const TaskDefinition* desiredDaemon(std::string_view family) const {
    auto it = desiredDaemons_.find(family);
    return it == desiredDaemons_.end() ? nullptr : it->second;
  }

  const Inputs& in_;
  Plan plan_;
  // Keys point into in_.desired, which outlives the planner.
  std::unordered_map<std::string_view, const TaskDefinition*> desiredDaemons_;
  std::vector<std::pair<std::string_view, const config::ApplicationTask*>> desiredTasks_;  // sorted by id
  Owners daemons_;
  Owners tasks_;
  Resources available_;
  std::map<std::string, std::string> portsHeld_;  // "8080/tcp" -> who holds it
  std::vector<std::string> criticalDown_;  // critical families with no serving copy now
  bool appsMayStart_ = false;
  std::set<std::string> seenCopies_;
};

}  // namespace

std::chrono::seconds backoffDelay(int failures) {
  if (failures <= 0) return seconds(0);
  const int shift = std::min(failures - 1, 9);  // 2^9 s > 5 min
  return std::min(seconds(1LL << shift), seconds(300));
}

Plan reconcile(const Inputs& inputs) { return Planner(inputs).run(); }

std::string describe(const Action& a) {
  switch (a.type) {
    case Action::Type::Create: return fmt::format("create {} ({})", a.containerName, a.reason);
    case Action::Type::Start: return fmt::format("start {} ({})", a.containerName, a.reason);
    case Action::Type::Stop: return fmt::format("stop {} within {} s ({})", a.containerName, a.stopTimeout.count(), a.reason);
    case Action::Type::Remove: return fmt::format("remove {} ({})", a.containerName, a.reason);
  }
  return "?";
}

}  // namespace daemonlet::agent
