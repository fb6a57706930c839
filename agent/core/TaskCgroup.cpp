#include "agent/core/TaskCgroup.h"

#include <algorithm>

#include <fmt/format.h>

#include "agent/core/ContainerSpecBuilder.h"
#include "config/Resources.h"

namespace daemonlet::agent {
namespace {

constexpr std::int64_t kMiB = 1024 * 1024;
constexpr std::int64_t kMinShares = 2, kMaxShares = 262'144;
constexpr const char* kRoot = "daemonlet";

// runc's conversion of cgroup v1 shares [2, 262144] to v2 weight [1, 10000].
std::int64_t weightOf(std::int64_t shares) { return 1 + ((shares - kMinShares) * 9999) / (kMaxShares - kMinShares); }

std::string trimmed(const std::string& parent) { return parent.empty() || parent.front() != '/' ? parent : parent.substr(1); }

}  // namespace

CgroupDriver cgroupDriverOf(const std::string& engineWord) { return engineWord == "systemd" ? CgroupDriver::Systemd : CgroupDriver::Cgroupfs; }

CgroupLimits groupLimits(const config::TaskDefinition& def) {
  // Admission and enforcement read the same numbers (DESIGN 3.3): never more than reserved.
  const config::Resources reserved = config::reservationOf(def);
  CgroupLimits out;
  if (reserved.memory > 0) out.memoryBytes = reserved.memory * kMiB;
  if (def.cpu && *def.cpu > 0) out.cpuQuotaMicros = *def.cpu * kCpuPeriodMicros / 1024;
  if (reserved.cpu > 0) out.cpuShares = std::clamp(reserved.cpu, kMinShares, kMaxShares);
  return out;
}

std::string cgroupParent(CgroupDriver driver, Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                         const std::string& instanceId) {
  std::string group = groupName(kind, def, taskId, instanceId);
  if (driver == CgroupDriver::Cgroupfs) return fmt::format("/{}/{}", kRoot, group);
  // A dash in a slice name means nesting (a-b.slice is a child of a.slice): the group's own
  // dashes become underscores, so it sits directly under daemonlet.slice.
  std::replace(group.begin(), group.end(), '-', '_');
  return fmt::format("{}-{}.slice", kRoot, group);
}

std::vector<CgroupStep> cgroupfsSteps(int version, const std::string& parent, const CgroupLimits& limits) {
  using T = CgroupStep::Type;
  const std::string p = trimmed(parent);
  std::vector<CgroupStep> steps;
  if (version == 2) {
    // Controllers must be enabled on every level above the one whose files are written.
    steps.push_back({T::MakeDirectory, kRoot, "", false});
    for (const char* level : {"", kRoot}) {
      const std::string file = std::string(level).empty() ? "cgroup.subtree_control" : std::string(level) + "/cgroup.subtree_control";
      steps.push_back({T::Write, file, "+memory", false});
      steps.push_back({T::Write, file, "+cpu", false});
    }
    steps.push_back({T::MakeDirectory, p, "", false});
    if (limits.memoryBytes) {
      steps.push_back({T::Write, p + "/memory.max", std::to_string(*limits.memoryBytes), false});
      steps.push_back({T::Write, p + "/memory.swap.max", "0", true});
    }
    if (limits.cpuQuotaMicros) steps.push_back({T::Write, p + "/cpu.max", fmt::format("{} {}", *limits.cpuQuotaMicros, kCpuPeriodMicros), false});
    if (limits.cpuShares > 0) steps.push_back({T::Write, p + "/cpu.weight", std::to_string(weightOf(limits.cpuShares)), false});
    return steps;
  }
  steps.push_back({T::MakeDirectory, "memory/" + p, "", false});
  if (limits.memoryBytes) {
    steps.push_back({T::Write, "memory/" + p + "/memory.limit_in_bytes", std::to_string(*limits.memoryBytes), false});
    // With swap accounting, memory+swap too: the group cannot spill past its limit.
    steps.push_back({T::Write, "memory/" + p + "/memory.memsw.limit_in_bytes", std::to_string(*limits.memoryBytes), true});
  }
  steps.push_back({T::MakeDirectory, "cpu/" + p, "", false});
  if (limits.cpuQuotaMicros) {
    steps.push_back({T::Write, "cpu/" + p + "/cpu.cfs_period_us", std::to_string(kCpuPeriodMicros), false});
    steps.push_back({T::Write, "cpu/" + p + "/cpu.cfs_quota_us", std::to_string(*limits.cpuQuotaMicros), false});
  }
  if (limits.cpuShares > 0) steps.push_back({T::Write, "cpu/" + p + "/cpu.shares", std::to_string(limits.cpuShares), false});
  return steps;
}

std::vector<std::string> cgroupfsDirectories(int version, const std::string& parent, const std::vector<std::string>& controllers) {
  const std::string p = trimmed(parent);
  if (version == 2) return {p};
  std::vector<std::string> out;
  for (const auto& c : controllers) out.push_back(c + "/" + p);
  return out;
}

std::vector<std::string> leftoverParents(const std::vector<FoundParent>& found, const std::set<std::string>& named,
                                         std::chrono::seconds minAge) {
  std::vector<std::string> out;
  for (const auto& f : found) {
    if (!f.populated && f.age >= minAge && !named.count(f.parent)) out.push_back(f.parent);
  }
  return out;
}

std::vector<SliceProperty> sliceProperties(int version, const CgroupLimits& limits) {
  std::vector<SliceProperty> out;
  if (limits.memoryBytes) out.push_back({version == 2 ? "MemoryMax" : "MemoryLimit", static_cast<std::uint64_t>(*limits.memoryBytes)});
  if (limits.cpuQuotaMicros)
    out.push_back({"CPUQuotaPerSecUSec", static_cast<std::uint64_t>(*limits.cpuQuotaMicros * 1'000'000 / kCpuPeriodMicros)});
  if (limits.cpuShares > 0) {
    if (version == 2) out.push_back({"CPUWeight", static_cast<std::uint64_t>(weightOf(limits.cpuShares))});
    else out.push_back({"CPUShares", static_cast<std::uint64_t>(limits.cpuShares)});
  }
  return out;
}

}  // namespace daemonlet::agent
