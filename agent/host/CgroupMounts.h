#pragma once
// On cgroup v1 the engines' OOM reports depend on the host's cgroup mounts: containerd's
// shim loads a container's cgroups through every hierarchy /proc/<pid>/cgroup lists, and
// when one of them has no mount it never watches for OOM. Docker then says OOMKilled false
// and containerd sends no TaskOOM, though the kernel killed the container at its limit.
// A host booted by systemd mounts every hierarchy; one that a nested systemd or a script
// mounted in another namespace does not, so the agent says so when it starts.
// packaging/dev-setup.sh (cgroup_hierarchies_to_mount) applies the same rule in bash before
// the engines start, and there also mounts controllers that no hierarchy holds yet.
#include <string>
#include <string_view>
#include <vector>

namespace daemonlet::agent {

// The controller lists ("hugetlb", "net_cls,net_prio") of the v1 hierarchies that
// `procCgroup` (the text of /proc/self/cgroup) lists and `mountinfo` (/proc/self/mountinfo)
// mounts nowhere. Named hierarchies (name=systemd) count like any other.
std::vector<std::string> unmountedCgroupHierarchies(std::string_view procCgroup, std::string_view mountinfo);

// A shell command that mounts `hierarchy` where systemd would ("name=systemd" at
// /sys/fs/cgroup/systemd), making the directory first.
std::string cgroupMountCommand(const std::string& hierarchy);

// The same for this process, from /proc; empty when /proc cannot be read.
std::vector<std::string> unmountedCgroupHierarchies();

}  // namespace daemonlet::agent
