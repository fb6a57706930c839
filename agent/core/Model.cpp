#include "agent/core/Model.h"

#include <algorithm>

#include <charconv>

namespace daemonlet::agent {
namespace {

std::int64_t number(const runtime::Labels& labels, const char* key) {
  auto it = labels.find(key);
  if (it == labels.end()) return 0;
  std::int64_t out = 0;
  std::from_chars(it->second.data(), it->second.data() + it->second.size(), out);
  return out;
}

std::string text(const runtime::Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? std::string() : it->second;
}

}  // namespace

const char* toString(Phase phase) {
  switch (phase) {
    case Phase::Starting: return "STARTING";
    case Phase::DaemonsPending: return "DAEMONS_PENDING";
    case Phase::Active: return "ACTIVE";
    case Phase::Draining: return "DRAINING";
    case Phase::Drained: return "DRAINED";
    case Phase::StoppingDaemons: return "STOPPING_DAEMONS";
    case Phase::Stopped: return "STOPPED";
  }
  return "?";
}

const char* toString(Status status) {
  switch (status) {
    case Status::Pending: return "PENDING";
    case Status::Activating: return "ACTIVATING";
    case Status::Running: return "RUNNING";
    case Status::Deactivating: return "DEACTIVATING";
    case Status::Stopping: return "STOPPING";
    case Status::Stopped: return "STOPPED";
  }
  return "?";
}

const char* toString(Kind kind) { return kind == Kind::Daemon ? "daemon" : "task"; }

bool ObservedContainer::running() const {
  return state == runtime::ContainerState::Running || state == runtime::ContainerState::Restarting ||
         state == runtime::ContainerState::Paused;
}

bool ObservedContainer::exited() const {
  return state == runtime::ContainerState::Exited || state == runtime::ContainerState::Dead;
}

std::optional<ObservedContainer> observe(const runtime::ContainerInfo& info) {
  const auto& l = info.labels;
  if (text(l, label::kManaged) != "true") return std::nullopt;
  const std::string kind = text(l, label::kKind);
  if (kind != "daemon" && kind != "task") return std::nullopt;
  ObservedContainer c;
  c.id = info.id;
  c.name = info.name;
  c.kind = kind == "daemon" ? Kind::Daemon : Kind::Task;
  c.family = text(l, label::kFamily);
  c.revision = number(l, label::kRevision);
  c.hash = text(l, label::kHash);
  c.taskId = text(l, label::kTaskId);
  c.container = text(l, label::kContainer);
  c.reservation = {number(l, label::kCpu), number(l, label::kMemory)};
  c.state = info.state;
  c.exitCode = info.exitCode;
  c.oomKilled = info.oomKilled;
  c.health = info.health;
  c.createdAt = info.createdAt;
  c.startedAt = info.startedAt;
  c.finishedAt = info.finishedAt;
  c.cgroupParent = info.cgroupParent;
  c.address = info.ipAddress;
  std::string ports = text(l, label::kHostPorts);
  for (std::size_t start = 0; !ports.empty() && start <= ports.size();) {
    const std::size_t comma = std::min(ports.find(',', start), ports.size());
    if (comma > start) c.hostPorts.push_back(ports.substr(start, comma - start));
    start = comma + 1;
  }
  if (c.family.empty() || c.hash.empty() || c.container.empty() || (c.kind == Kind::Task && c.taskId.empty())) return std::nullopt;
  return c;
}

}  // namespace daemonlet::agent
