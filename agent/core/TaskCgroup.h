#pragma once
// One parent cgroup per task run and per daemon copy (P3, DESIGN 3.3): every container of
// the copy goes in it, its limits are what the copy reserved, and container limits apply
// inside it. What the parent is called and which files or properties carry the limits is
// decided here, for both cgroup drivers and both cgroup versions; host/TaskCgroups does
// the writing.
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/core/Model.h"
#include "config/TaskDefinition.h"

namespace daemonlet::agent {

enum class CgroupDriver { Cgroupfs, Systemd };

// "systemd" -> Systemd; anything else is a cgroupfs path.
CgroupDriver cgroupDriverOf(const std::string& engineWord);

inline constexpr std::int64_t kCpuPeriodMicros = 100'000;

struct CgroupLimits {
  std::optional<std::int64_t> memoryBytes;      // the whole copy's hard limit
  std::optional<std::int64_t> cpuQuotaMicros;   // CPU time per kCpuPeriodMicros: a hard cap
  std::int64_t cpuShares = 0;                   // the copy's weight against the others; 0 = default
  friend bool operator==(const CgroupLimits&, const CgroupLimits&) = default;
};

// The copy's reservation (config::reservationOf, the number admission counted) as the
// group's hard memory limit, so a task can never use more than it reserved. Task-level
// cpu is a hard cap; container cpu units stay relative (ECS: shares), so the group's
// weight is its cpu reservation and it gets no quota without task-level cpu.
CgroupLimits groupLimits(const config::TaskDefinition& def);

// The parent as the engine's driver names it: "/daemonlet/<group>" (cgroupfs) or
// "daemonlet-<group>.slice" (systemd, so a child of daemonlet.slice). <group> is the
// readable owner and 12 hex digits distinct per instance, owner and definition hash.
std::string cgroupParent(CgroupDriver driver, Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                         const std::string& instanceId);

// cgroupfs: what to create and write, in order, relative to the cgroup mount
// (/sys/fs/cgroup). Optional writes are skipped where the kernel lacks the file (memsw
// without swap accounting).
struct CgroupStep {
  enum class Type { MakeDirectory, Write };
  Type type = Type::Write;
  std::string path;
  std::string value;
  bool optional = false;
  friend bool operator==(const CgroupStep&, const CgroupStep&) = default;
};
std::vector<CgroupStep> cgroupfsSteps(int version, const std::string& parent, const CgroupLimits& limits);

// cgroupfs: the directories to remove (deepest last-created first), relative to the mount;
// v1 has one per controller hierarchy in `controllers`.
std::vector<std::string> cgroupfsDirectories(int version, const std::string& parent, const std::vector<std::string>& controllers);

// cgroupfs: a parent found under daemonlet/, as host/TaskCgroups lists it.
struct FoundParent {
  std::string parent;           // "/daemonlet/<group>"
  std::chrono::seconds age{0};  // since its directory last changed, in the hierarchy where that is latest
  bool populated = false;       // a process, or a container's own cgroup, in it in any hierarchy
};

// Containers removed while no agent ran (kill -9, then `docker rm`) leave their copy's
// parent behind, and thousands of empty cgroups cost the kernel memory. A leftover is
// empty, named by no container on the engine (of any instance: agents share daemonlet/),
// and older than `minAge`, so that another agent's parent, made just before its first
// create, is left alone.
inline constexpr std::chrono::minutes kLeftoverParentAge{10};
std::vector<std::string> leftoverParents(const std::vector<FoundParent>& found, const std::set<std::string>& named,
                                         std::chrono::seconds minAge);

// systemd: the slice's unit properties (all of type "t", an unsigned 64-bit integer).
struct SliceProperty {
  std::string name;
  std::uint64_t value = 0;
  friend bool operator==(const SliceProperty&, const SliceProperty&) = default;
};
std::vector<SliceProperty> sliceProperties(int version, const CgroupLimits& limits);

}  // namespace daemonlet::agent
