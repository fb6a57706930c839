#include "runtime/Container.h"

namespace daemonlet::runtime {

const char* toString(ContainerState state) {
  switch (state) {
    case ContainerState::Created: return "created";
    case ContainerState::Running: return "running";
    case ContainerState::Paused: return "paused";
    case ContainerState::Restarting: return "restarting";
    case ContainerState::Removing: return "removing";
    case ContainerState::Exited: return "exited";
    case ContainerState::Dead: return "dead";
    case ContainerState::Unknown: return "unknown";
  }
  return "?";
}

const char* toString(Health health) {
  switch (health) {
    case Health::None: return "none";
    case Health::Starting: return "starting";
    case Health::Healthy: return "healthy";
    case Health::Unhealthy: return "unhealthy";
  }
  return "?";
}

const char* toString(RuntimeEvent::Kind kind) {
  switch (kind) {
    case RuntimeEvent::Kind::Start: return "start";
    case RuntimeEvent::Kind::Exit: return "exit";
    case RuntimeEvent::Kind::Oom: return "oom";
    case RuntimeEvent::Kind::HealthChanged: return "health";
    case RuntimeEvent::Kind::Destroy: return "destroy";
  }
  return "?";
}

}  // namespace daemonlet::runtime
