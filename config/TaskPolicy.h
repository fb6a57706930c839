#pragma once
// What application tasks may ask for (DESIGN 3.2 `taskPolicy`). Platform teams own the
// host; application teams own their definitions. A definition outside the policy is
// refused whole, with one reason per field, and never started. Daemons are the platform's
// own and are not checked. The defaults accept every ECS definition that works on ECS,
// except `environmentFiles`: the agent reads those as root, so by default only files below
// /etc/daemonlet may end up in an application's environment.
#include <string>
#include <vector>

#include "config/TaskDefinition.h"

namespace daemonlet::config {

struct TaskPolicy {
  bool allowPrivileged = true;
  bool allowHostNetwork = true;                   // networkMode: host
  bool allowHostPid = true;                       // pidMode: host
  std::vector<std::string> allowedCapabilities{"ALL"};  // linuxParameters.capabilities.add; "ALL" = any
  std::vector<std::string> hostPathRoots{"/"};    // volumes[].host.sourcePath only below these
  std::vector<std::string> environmentFileRoots{"/etc/daemonlet"};  // environmentFiles only below these
};

struct PolicyRefusal {
  std::string field;   // containerDefinitions[0].privileged, volumes[1].host.sourcePath, ...
  std::string reason;  // names the taskPolicy key that refuses it

  // "field 'containerDefinitions[0].privileged': privileged containers are not allowed (taskPolicy.allowPrivileged is false)"
  std::string format() const;
};

// Every reason `def` is outside `policy`; empty = allowed.
std::vector<PolicyRefusal> checkTaskPolicy(const TaskPolicy& policy, const TaskDefinition& def);

// True when the absolute `path`, normalised lexically (no "..", no "." left), lies at or
// below one of `roots`. Relative paths are below nothing. Symbolic links are not followed:
// a root must be a directory only root can write to (as /etc/daemonlet is).
bool pathBelowAny(const std::string& path, const std::vector<std::string>& roots);

}  // namespace daemonlet::config
