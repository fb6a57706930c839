#include "config/TaskDefinition.h"

namespace daemonlet::config {

const ContainerDefinition* TaskDefinition::container(const std::string& name) const {
  for (const auto& c : containers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const char* toString(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::Bridge: return "bridge";
    case NetworkMode::Host: return "host";
    case NetworkMode::None: return "none";
    case NetworkMode::Awsvpc: return "awsvpc";
  }
  return "?";
}

const char* toString(TaskRestart restart) {
  switch (restart) {
    case TaskRestart::Always: return "always";
    case TaskRestart::OnFailure: return "on-failure";
    case TaskRestart::Never: return "never";
  }
  return "?";
}

std::optional<TaskRestart> parseTaskRestart(std::string_view text) {
  for (auto r : {TaskRestart::Always, TaskRestart::OnFailure, TaskRestart::Never}) {
    if (text == toString(r)) return r;
  }
  return std::nullopt;
}

const char* toString(DependencyCondition condition) {
  switch (condition) {
    case DependencyCondition::Start: return "START";
    case DependencyCondition::Complete: return "COMPLETE";
    case DependencyCondition::Success: return "SUCCESS";
    case DependencyCondition::Healthy: return "HEALTHY";
  }
  return "?";
}

}  // namespace daemonlet::config
