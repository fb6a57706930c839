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
  }
  return "?";
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
