// One parent cgroup per copy (P3, DESIGN 3.3): its name, its limits, and the files or
// slice properties that carry them, for both drivers and both cgroup versions. The v1
// cgroupfs writes are also read back from the kernel in the e2e test; the systemd driver
// and cgroup v2 are proven only here (this host runs Docker on cgroupfs, cgroup v1).
#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"
#include "agent/core/TaskCgroup.h"

using namespace daemonlet;
using namespace daemonlet::test;
using Step = agent::CgroupStep;
using T = agent::CgroupStep::Type;

namespace {
const char* kThree = R"({"family":"web","memory":"96","cpu":"512","containerDefinitions":[
  {"name":"app","image":"i","memory":64},{"name":"log","image":"i","memoryReservation":16},{"name":"hog","image":"i"}]})";
}

TEST_CASE("task cgroups: the task's reservation is the limit of the whole group, not of each container") {
  auto d = def(kThree);
  auto limits = groupLimits(d);
  CHECK(limits.memoryBytes == 96LL << 20);
  CHECK(limits.cpuQuotaMicros == 50'000);  // 512 units = half a CPU per 100 ms
  CHECK(limits.cpuShares == 512);
  for (const auto& c : d.containers) {
    auto s = buildContainerSpec(Kind::Task, d, "web-1", c, "i-1");
    CHECK_FALSE(s.nanoCpus);
    CHECK((s.memoryBytes ? *s.memoryBytes : 0) <= (64LL << 20));  // only a container's own memory
  }

  // Without task-level memory, a container with only a soft limit is bounded within the
  // group by it; container cpu units stay shares (no quota), and weigh the group.
  auto soft = def(R"({"family":"d","containerDefinitions":[{"name":"a","image":"i","memoryReservation":32,"cpu":10},
    {"name":"b","image":"i","memory":64,"memoryReservation":16,"cpu":20}]})");
  auto l = groupLimits(soft);
  CHECK(l.memoryBytes == 96LL << 20);
  CHECK_FALSE(l.cpuQuotaMicros);
  CHECK(l.cpuShares == 30);

  auto none = def(R"({"family":"n","containerDefinitions":[{"name":"a","image":"i"}]})");
  CHECK(groupLimits(none) == CgroupLimits{});
}

TEST_CASE("task cgroups: parents are named per copy, for the driver the engine uses") {
  auto d = def(kThree);
  const std::string fs = cgroupParent(CgroupDriver::Cgroupfs, Kind::Task, d, "web-1", "i-1");
  CHECK(fs.rfind("/daemonlet/task-web-1-", 0) == 0);
  CHECK(fs.size() == std::string("/daemonlet/task-web-1-").size() + 12);
  // A dash in a slice name nests it: the group's own dashes must not.
  const std::string slice = cgroupParent(CgroupDriver::Systemd, Kind::Task, d, "web-1", "i-1");
  CHECK(slice.rfind("daemonlet-task_web_1_", 0) == 0);
  CHECK(slice.size() > 6);
  CHECK(slice.substr(slice.size() - 6) == ".slice");
  CHECK(std::count(slice.begin(), slice.end(), '-') == 1);
  // Another instance, another task, another revision: another parent.
  CHECK(cgroupParent(CgroupDriver::Cgroupfs, Kind::Task, d, "web-1", "i-2") != fs);
  CHECK(cgroupParent(CgroupDriver::Cgroupfs, Kind::Task, d, "web-2", "i-1") != fs);
  auto r1 = simple("metrics", 1), r2 = simple("metrics", 2);
  CHECK(cgroupParent(CgroupDriver::Cgroupfs, Kind::Daemon, r1, "", "i-1") != cgroupParent(CgroupDriver::Cgroupfs, Kind::Daemon, r2, "", "i-1"));
  CHECK(cgroupDriverOf("systemd") == CgroupDriver::Systemd);
  CHECK(cgroupDriverOf("cgroupfs") == CgroupDriver::Cgroupfs);
}

TEST_CASE("task cgroups: cgroupfs v1 writes memory.limit_in_bytes and the CFS quota in the memory and cpu hierarchies") {
  CgroupLimits l{96LL << 20, 50'000, 512};
  const std::vector<Step> expected = {
      {T::MakeDirectory, "memory/daemonlet/g", "", false},
      {T::Write, "memory/daemonlet/g/memory.limit_in_bytes", "100663296", false},
      {T::Write, "memory/daemonlet/g/memory.memsw.limit_in_bytes", "100663296", true},
      {T::MakeDirectory, "cpu/daemonlet/g", "", false},
      {T::Write, "cpu/daemonlet/g/cpu.cfs_period_us", "100000", false},
      {T::Write, "cpu/daemonlet/g/cpu.cfs_quota_us", "50000", false},
      {T::Write, "cpu/daemonlet/g/cpu.shares", "512", false}};
  CHECK(cgroupfsSteps(1, "/daemonlet/g", l) == expected);
  CHECK(cgroupfsDirectories(1, "/daemonlet/g", {"cpu", "memory", "pids"}) ==
        std::vector<std::string>{"cpu/daemonlet/g", "memory/daemonlet/g", "pids/daemonlet/g"});
}

TEST_CASE("task cgroups: cgroupfs v2 enables the controllers above the group, then writes memory.max and cpu.max") {
  CgroupLimits l{96LL << 20, 50'000, 512};
  const std::vector<Step> expected = {
      {T::MakeDirectory, "daemonlet", "", false},
      {T::Write, "cgroup.subtree_control", "+memory", false},
      {T::Write, "cgroup.subtree_control", "+cpu", false},
      {T::Write, "daemonlet/cgroup.subtree_control", "+memory", false},
      {T::Write, "daemonlet/cgroup.subtree_control", "+cpu", false},
      {T::MakeDirectory, "daemonlet/g", "", false},
      {T::Write, "daemonlet/g/memory.max", "100663296", false},
      {T::Write, "daemonlet/g/memory.swap.max", "0", true},
      {T::Write, "daemonlet/g/cpu.max", "50000 100000", false},
      {T::Write, "daemonlet/g/cpu.weight", "20", false}};  // runc's shares-to-weight: 512 -> 20
  CHECK(cgroupfsSteps(2, "/daemonlet/g", l) == expected);
  CHECK(cgroupfsDirectories(2, "/daemonlet/g", {"cpu", "memory"}) == std::vector<std::string>{"daemonlet/g"});
  // No limits: only the group itself.
  CHECK(cgroupfsSteps(2, "/daemonlet/g", {}).size() == 6);
}

TEST_CASE("task cgroups: systemd slices carry the limits as unit properties, by cgroup version") {
  CgroupLimits l{96LL << 20, 50'000, 512};
  CHECK(sliceProperties(1, l) == std::vector<SliceProperty>{{"MemoryLimit", 100663296}, {"CPUQuotaPerSecUSec", 500'000}, {"CPUShares", 512}});
  CHECK(sliceProperties(2, l) == std::vector<SliceProperty>{{"MemoryMax", 100663296}, {"CPUQuotaPerSecUSec", 500'000}, {"CPUWeight", 20}});
  CHECK(sliceProperties(2, {}).empty());
}
