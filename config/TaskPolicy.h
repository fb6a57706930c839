#pragma once
// What application tasks may ask for (DESIGN 3.2 `taskPolicy`). Platform teams own the
// host; application teams own their definitions. A definition outside the policy is
// refused whole, with one reason per field, and never started. Daemons are the platform's
// own and are not checked. The defaults accept every ECS definition that works on ECS,
// except `environmentFiles`: the agent reads those as root, so by default only files below
// /etc/daemonlet may end up in an application's environment, and never the agent's own
// secrets (secrets.directory, token and key files) that lie there.
#include <map>
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
  // Shared Docker volumes (scope: shared) that app tasks may use besides those daemonlet
  // created for app tasks (labelled io.daemonlet.shared-by=task); "*" = any volume.
  std::vector<std::string> sharedVolumes;

  // Not a config key: the agent's own secret files and directories (taskPolicyOf), never
  // read into an environment unless an environmentFileRoots entry lies at or below one.
  struct Excluded {
    std::string path;
    std::string what;  // "the agent's secrets.directory"
  };
  std::vector<Excluded> environmentFileExcludes;
};

// How paths are compared. The reconciler is pure and compares them as written
// (normalised); the executor, on the host, follows symbolic links first (a missing tail
// is resolved through its nearest existing parent), just before the task's containers
// are created.
enum class PathResolution { Lexical, OnHost };

struct PolicyRefusal {
  std::string field;   // containerDefinitions[0].privileged, volumes[1].host.sourcePath, ...
  std::string reason;  // names the taskPolicy key that refuses it

  // "field 'containerDefinitions[0].privileged': privileged containers are not allowed (taskPolicy.allowPrivileged is false)"
  std::string format() const;
};

// Every reason `def` is outside `policy`; empty = allowed.
std::vector<PolicyRefusal> checkTaskPolicy(const TaskPolicy& policy, const TaskDefinition& def,
                                           PathResolution paths = PathResolution::Lexical);

// The label daemonlet puts on a shared volume it creates: "task" or "daemon".
inline constexpr const char* kSharedByLabel = "io.daemonlet.shared-by";

// Whether an app task may mount the existing shared volume `name` with `labels`: one that
// daemonlet created for an app task, or one taskPolicy.sharedVolumes names. A daemon's
// volume, or one made by hand, is the platform's unless the policy says otherwise.
bool sharedVolumeAllowed(const TaskPolicy& policy, const std::string& name, const std::map<std::string, std::string>& labels);

// True when the absolute `path`, normalised lexically (no "..", no "." left), lies at or
// below one of `roots`. Relative paths are below nothing. Symbolic links are not followed
// here; checkTaskPolicy(..., PathResolution::OnHost) resolves them first.
bool pathBelowAny(const std::string& path, const std::vector<std::string>& roots);

}  // namespace daemonlet::config
