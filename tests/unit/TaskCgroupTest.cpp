// One parent cgroup per copy (P3, DESIGN 3.3): its name, its limits, and the files or
// slice properties that carry them, for both drivers and both cgroup versions. The v1
// cgroupfs writes are also read back from the kernel in the e2e test; the systemd driver
// and cgroup v2 are proven only here (this host runs Docker on cgroupfs, cgroup v1).
#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"
#include "agent/core/TaskCgroup.h"
#include "agent/host/CgroupMounts.h"
#include "agent/host/TaskCgroups.h"
#include "config/Resources.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <unistd.h>

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

  // Without task-level memory, the group's limit is what admission reserved: each
  // container's memoryReservation where it has one (b's 16, not its hard 64), else its
  // memory. A group limit above the reservation would let the task use more than it was
  // admitted with (DESIGN 3.3). Container cpu units stay shares (no quota), and weigh the group.
  auto soft = def(R"({"family":"d","containerDefinitions":[{"name":"a","image":"i","memoryReservation":32,"cpu":10},
    {"name":"b","image":"i","memory":64,"memoryReservation":16,"cpu":20}]})");
  auto l = groupLimits(soft);
  CHECK(l.memoryBytes == 48LL << 20);
  CHECK(config::reservationOf(soft).memory == 48);
  CHECK_FALSE(l.cpuQuotaMicros);
  CHECK(l.cpuShares == 30);

  auto none = def(R"({"family":"n","containerDefinitions":[{"name":"a","image":"i"}]})");
  CHECK(groupLimits(none) == CgroupLimits{});
}

// One source of truth: for any definition, the group's limits are exactly what admission
// reserved for it (config::reservationOf), dimension by dimension.
TEST_CASE("task cgroups: for thousands of random definitions the group limit equals the admission reservation") {
  std::mt19937 rng(20261201);
  auto maybe = [&](int percent, std::int64_t lo, std::int64_t hi) -> std::optional<std::int64_t> {
    if (std::uniform_int_distribution<int>(0, 99)(rng) >= percent) return std::nullopt;
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  int limited = 0, softOnly = 0;
  for (int i = 0; i < 5000; ++i) {
    config::TaskDefinition d;
    d.family = "f";
    d.memory = maybe(30, 4, 8192);
    d.cpu = maybe(30, 1, 16384);
    const int n = std::uniform_int_distribution<int>(1, 6)(rng);
    for (int k = 0; k < n; ++k) {
      config::ContainerDefinition c;
      c.name = "c" + std::to_string(k);
      c.memory = maybe(50, 4, 4096);
      c.memoryReservation = maybe(50, 4, 4096);
      c.cpu = maybe(50, 0, 4096);
      if (c.memoryReservation && !c.memory) ++softOnly;
      d.containers.push_back(std::move(c));
    }
    const auto reserved = config::reservationOf(d);
    const auto limits = groupLimits(d);
    INFO("definition " << i);
    if (reserved.memory > 0) {
      ++limited;
      CHECK(limits.memoryBytes == std::optional<std::int64_t>(reserved.memory << 20));
    } else {
      CHECK_FALSE(limits.memoryBytes);
    }
    CHECK(limits.cpuShares == (reserved.cpu > 0 ? std::clamp<std::int64_t>(reserved.cpu, 2, 262'144) : 0));
    // A hard CPU cap only where the task itself sets cpu: container units are relative (ECS).
    CHECK(limits.cpuQuotaMicros.has_value() == (d.cpu && *d.cpu > 0));
  }
  CHECK(limited > 4000);
  CHECK(softOnly > 1000);
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

namespace {
// A stand-in cgroup v1 mount: plain directories, so that what TaskCgroups writes can be
// read back (the e2e test does the same on the kernel's cgroupfs).
struct FakeMount {
  std::filesystem::path root = std::filesystem::temp_directory_path() / ("dl-cgm-" + std::to_string(::getpid()));
  FakeMount() {
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root / "memory");
    std::filesystem::create_directories(root / "cpu");
  }
  ~FakeMount() { std::filesystem::remove_all(root); }
  std::string read(const std::string& rel) const {
    std::ifstream in(root / rel);
    std::string v;
    std::getline(in, v);
    return v;
  }
  void write(const std::string& rel, const std::string& v) const {
    std::filesystem::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << v;
  }
};
}  // namespace

TEST_CASE("task cgroups: limits are written when a copy's group is made, a group holding containers keeps its own") {
  FakeMount m;
  std::ostringstream logs;
  agent::Logger log{logs};
  agent::TaskCgroups cgroups{log, m.root};
  cgroups.configure(CgroupDriver::Cgroupfs, 1);
  CgroupLimits l{48LL << 20, std::nullopt, 30};

  // New (or empty, left by a create that failed): the reservation is written.
  REQUIRE(cgroups.ensure("/daemonlet/new", l));
  CHECK(m.read("memory/daemonlet/new/memory.limit_in_bytes") == "50331648");
  CHECK(m.read("cpu/daemonlet/new/cpu.shares") == "30");
  m.write("memory/daemonlet/empty/memory.limit_in_bytes", "100663296");
  REQUIRE(cgroups.ensure("/daemonlet/empty", l));
  CHECK(m.read("memory/daemonlet/empty/memory.limit_in_bytes") == "50331648");

  // Adopted: an older agent made it with a higher limit and a container runs in it
  // (its own cgroup is a subdirectory). Lowering it could OOM-kill the task: left alone.
  m.write("memory/daemonlet/live/memory.limit_in_bytes", "100663296");
  std::filesystem::create_directories(m.root / "memory/daemonlet/live/0123abcd");
  m.write("cpu/daemonlet/live/cpu.shares", "1024");
  m.write("cpu/daemonlet/live/cgroup.procs", "4242");
  REQUIRE(cgroups.ensure("/daemonlet/live", l));
  CHECK(m.read("memory/daemonlet/live/memory.limit_in_bytes") == "100663296");
  CHECK(m.read("cpu/daemonlet/live/cpu.shares") == "1024");
  CHECK(logs.str().find("in use, keeps 100663296") != std::string::npos);
}

TEST_CASE("task cgroups: a parent left by containers removed while no agent ran is swept, a named, busy or new one stays") {
  using namespace std::chrono_literals;
  const std::vector<agent::FoundParent> found{
      {"/daemonlet/task-gone-0123456789ab", 3600s, false},   // its containers were removed while no agent ran
      {"/daemonlet/task-named-0123456789ab", 3600s, false},  // a stopped container of some instance still names it
      {"/daemonlet/task-busy-0123456789ab", 3600s, true},    // a process runs in it
      {"/daemonlet/task-new-0123456789ab", 5s, false},       // another agent's, made just before its first create
  };
  const std::set<std::string> named{"/daemonlet/task-named-0123456789ab", "/daemonlet/elsewhere"};
  CHECK(agent::leftoverParents(found, named, agent::kLeftoverParentAge) == std::vector<std::string>{"/daemonlet/task-gone-0123456789ab"});
  CHECK(agent::leftoverParents(found, named, 1s).size() == 2);  // the new one too, once old enough
}

TEST_CASE("task cgroups: parents are found in every v1 hierarchy, with the youngest age and busy anywhere") {
  using namespace std::chrono_literals;
  FakeMount m;
  std::ostringstream logs;
  agent::Logger log{logs};
  agent::TaskCgroups cgroups{log, m.root};
  cgroups.configure(CgroupDriver::Cgroupfs, 1);
  const auto old = std::filesystem::file_time_type::clock::now() - 1h;
  for (const char* h : {"memory", "cpu"}) {
    std::filesystem::create_directories(m.root / h / "daemonlet/task-a-0123456789ab");
    std::filesystem::last_write_time(m.root / h / "daemonlet/task-a-0123456789ab", old);
  }
  std::filesystem::create_directories(m.root / "cpu/daemonlet/task-b-0123456789ab/0123abcd");  // a container's own cgroup
  std::filesystem::create_directories(m.root / "memory/daemonlet/not-ours");

  auto found = cgroups.parents();
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.parent < b.parent; });
  REQUIRE(found.size() == 2);
  CHECK(found[0].parent == "/daemonlet/task-a-0123456789ab");
  CHECK(found[0].age >= 3590s);
  CHECK_FALSE(found[0].populated);
  CHECK(found[1].parent == "/daemonlet/task-b-0123456789ab");
  CHECK(found[1].age < 60s);
  CHECK(found[1].populated);
}

TEST_CASE("task cgroups: a v1 hierarchy listed for this process but mounted nowhere is found (the engine cannot report OOM)") {
  const std::string procCgroup =
      "13:hugetlb:/\n12:perf_event:/\n10:net_cls,net_prio:/\n9:name=systemd:/\n4:memory:/docker/abc\n1:cpu:/\n0::/\n";
  const std::string mountinfo =
      "30 22 0:26 / /sys/fs/cgroup ro,relatime - tmpfs tmpfs ro,size=4096k,mode=755\n"
      "31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "34 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "39 30 0:35 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "40 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
      "41 30 0:37 / /sys/fs/cgroup/hugetlb rw,relatime shared:9 - cgroup cgroup rw,hugetlb\n"
      "42 30 0:38 / /sys/fs/cgroup/net_cls rw,relatime - cgroup cgroup rw,net_cls\n";
  // net_prio shares a hierarchy with net_cls, so a mount carrying only net_cls is not it.
  CHECK(agent::unmountedCgroupHierarchies(procCgroup, mountinfo) == std::vector<std::string>{"perf_event", "net_cls,net_prio"});
  CHECK(agent::cgroupMountCommand("net_cls,net_prio") ==
        "mkdir -p /sys/fs/cgroup/net_cls,net_prio && mount -t cgroup -o net_cls,net_prio cgroup /sys/fs/cgroup/net_cls,net_prio");
  CHECK(agent::cgroupMountCommand("name=systemd") == "mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd");
  SECTION("all mounted: nothing") {
    const std::string all = mountinfo + "43 30 0:39 / /sys/fs/cgroup/perf_event rw - cgroup cgroup rw,perf_event\n" +
                            "44 30 0:40 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n";
    CHECK(agent::unmountedCgroupHierarchies(procCgroup, all).empty());
  }
  SECTION("cgroup v2 only: nothing") {
    CHECK(agent::unmountedCgroupHierarchies("0::/system.slice/daemonlet.service\n",
                                            "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n").empty());
  }
}
