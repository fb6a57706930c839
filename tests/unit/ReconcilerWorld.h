#pragma once
// A simulated engine for the pure reconciler's tests: containers as the runtime would
// report them, changed by carrying out plans. Not a runtime adapter: never used to prove
// one works.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <fmt/format.h>

#include "agent/core/ContainerSpecBuilder.h"
#include "agent/core/Reconciler.h"
#include "config/TaskDefinitionParser.h"

namespace daemonlet::test {

using namespace agent;

inline config::TaskDefinition def(const std::string& json) {
  auto p = config::parseTaskDefinition(json, "test.json");
  if (!p.ok()) throw std::runtime_error("bad test definition: " + (p.diagnostics.empty() ? json : p.diagnostics[0].format()));
  return *p.value;
}

// {"family": F, "revision": R, one container "main" with `memory` MiB [, health check]}
inline config::TaskDefinition simple(const std::string& family, int revision, int memory = 64, bool health = false,
                                     int cpu = 0, const std::string& extra = "") {
  return def(fmt::format(R"({{"family":"{}","revision":{},"containerDefinitions":[{{"name":"main","image":"i","memory":{},"cpu":{}{}{}}}]}})",
                         family, revision, memory, cpu, health ? R"(,"healthCheck":{"command":["CMD","true"]})" : "", extra));
}

// The executor skips a step for a container that has one under way: what `p` would do to
// `containerId` while its earlier step has not landed.
inline void dropStepsOf(Plan& p, const std::string& containerId) {
  p.actions.erase(std::remove_if(p.actions.begin(), p.actions.end(), [&](const Action& a) { return a.containerId == containerId; }),
                  p.actions.end());
}

struct World {
  config::DesiredState desired;
  ObservedState observed;
  Memory memory;
  Phase phase = Phase::Starting;
  TimePoint now = TimePoint(std::chrono::hours(1000));
  TimePoint bootAt = now;
  std::optional<WallTime> hostBootAt;
  std::vector<EngineOutage> outages;
  std::set<std::string> runningAtLastSave;
  // The engine's clock, in step with `now` (tests that step one clock move it alone).
  std::chrono::nanoseconds wallOffset{0};
  WallTime wall() const { return WallTime(now.time_since_epoch() + wallOffset); }
  Resources capacity{4096, 8192};
  Settings settings;
  config::TaskPolicy taskPolicy;
  bool drain = false, shutdown = false, confirmed = false, taskInFlight = false, daemonInFlight = false;
  bool observedStale = false;
  int nextId = 0;

  Plan plan() {
    Inputs in(desired, observed);
    in.instanceId = "i-1";
    in.hostBootAt = hostBootAt;
    in.engineOutages = outages;
    in.runningAtLastSave = runningAtLastSave;
    in.capacity = capacity;
    in.phase = phase;
    in.drainRequested = drain;
    in.shutdownRequested = shutdown;
    in.tasksConfirmedGone = confirmed;
    in.observedStale = observedStale;
    in.taskActionsInFlight = taskInFlight;
    in.daemonActionsInFlight = daemonInFlight;
    in.bootAt = bootAt;
    in.now = now;
    in.memory = memory;
    in.settings = settings;
    in.taskPolicy = taskPolicy;
    return reconcile(in);
  }

  // Plans and takes the plan as the agent would: memory and phase carried over.
  Plan step() {
    Plan p = plan();
    memory = p.memory;
    phase = p.phase;
    return p;
  }

  // The runtime name of a container of the desired state, as this world's agent names it.
  std::string daemonContainer(std::size_t daemon, const std::string& container = "main") const {
    return containerName(Kind::Daemon, desired.daemons.at(daemon), "", container, "i-1");
  }
  std::string taskContainer(const std::string& taskId, const std::string& container = "main") const {
    return containerName(Kind::Task, desired.task(taskId)->definition, taskId, container, "i-1");
  }

  ObservedContainer* find(const std::string& name) {
    for (auto& c : observed.containers) {
      if (c.name == name || c.id == name) return &c;
    }
    return nullptr;
  }

  // Every action succeeds at once: created containers are Created, started ones Running
  // (and healthy when they have a check, if `healthy`), stopped ones exit 143.
  void apply(const Plan& p, bool healthy = true) {
    for (const auto& a : p.actions) {
      switch (a.type) {
        case Action::Type::Create: {
          const std::string owner = a.kind == Kind::Task ? a.owner : "";
          const auto* c = a.definition->container(a.container);
          // awsvpc: the network holder is no container of the definition.
          auto spec = c ? buildContainerSpec(a.kind, *a.definition, owner, *c, "i-1")
                        : buildNetworkHolderSpec(a.kind, *a.definition, owner, "i-1", "pause", "daemonlet0");
          runtime::ContainerInfo info;
          if (!c) info.ipAddress = "172.30.0." + std::to_string(nextId + 2);
          info.id = "c" + std::to_string(++nextId);
          info.name = spec.name;
          info.labels = spec.labels;
          info.state = runtime::ContainerState::Created;
          info.createdAt = wall();
          if (c && c->healthCheck) info.health = runtime::Health::Starting;
          if (!find(spec.name)) observed.containers.push_back(*observe(info));
          break;
        }
        case Action::Type::Start: {
          auto* c = find(a.containerId);
          c->state = runtime::ContainerState::Running;
          c->startedAt = wall();
          // As Docker does, a (re)started container's health starts over.
          if (c->health != runtime::Health::None) c->health = healthy ? runtime::Health::Healthy : runtime::Health::Starting;
          break;
        }
        case Action::Type::Stop: exit(a.containerId, 143); break;
        case Action::Type::Remove:
          observed.containers.erase(std::remove_if(observed.containers.begin(), observed.containers.end(),
                                                   [&](const ObservedContainer& c) { return c.id == a.containerId; }),
                                    observed.containers.end());
          break;
      }
    }
  }

  void exit(const std::string& idOrName, int code) {
    auto* c = find(idOrName);
    c->state = runtime::ContainerState::Exited;
    c->exitCode = code;
    c->finishedAt = wall();
  }

  // Plans while `underWay`, a daemon step on `containerId`, has not landed (the executor
  // skips that container's steps meanwhile), then lands it and applies the plan.
  void planWhileUnderWay(const Plan& underWay, const std::string& containerId) {
    daemonInFlight = true;
    Plan p = step();
    dropStepsOf(p, containerId);
    daemonInFlight = false;
    apply(underWay);
    apply(p);
  }

  // Steps and applies until nothing is left to do (or `limit` rounds).
  int settle(int limit = 20) {
    int rounds = 0;
    for (; rounds < limit; ++rounds) {
      Plan p = step();
      if (p.actions.empty()) break;
      apply(p);
    }
    return rounds;
  }

  std::vector<const ObservedContainer*> running(Kind kind, const std::string& owner = "") const {
    std::vector<const ObservedContainer*> out;
    for (const auto& c : observed.containers) {
      if (c.kind == kind && c.running() && (owner.empty() || c.owner() == owner)) out.push_back(&c);
    }
    return out;
  }
};

inline int count(const Plan& p, Action::Type type, Kind kind, const std::string& owner = "") {
  return static_cast<int>(std::count_if(p.actions.begin(), p.actions.end(), [&](const Action& a) {
    return a.type == type && a.kind == kind && (owner.empty() || a.owner == owner);
  }));
}

inline const TaskStatus* taskStatus(const Plan& p, const std::string& id) {
  for (const auto& t : p.tasks) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

inline const DaemonStatus* daemonStatus(const Plan& p, const std::string& family) {
  for (const auto& d : p.daemons) {
    if (d.family == family) return &d;
  }
  return nullptr;
}

}  // namespace daemonlet::test
