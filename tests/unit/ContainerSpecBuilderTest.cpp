#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"

using namespace daemonlet;
using namespace daemonlet::test;
using namespace std::chrono_literals;

TEST_CASE("container specs: names and labels of DESIGN 3.6") {
  auto d = simple("metrics", 3, 64, true, 128);
  auto s = buildContainerSpec(Kind::Daemon, d, "", d.containers[0], "i-abc");
  CHECK(s.name.rfind("daemonlet-daemon-metrics-3-main-", 0) == 0);
  CHECK(s.name.size() == std::string("daemonlet-daemon-metrics-3-main-").size() + 12);
  CHECK(s.labels.at("io.daemonlet.managed") == "true");
  CHECK(s.labels.at("io.daemonlet.kind") == "daemon");
  CHECK(s.labels.at("io.daemonlet.family") == "metrics");
  CHECK(s.labels.at("io.daemonlet.revision") == "3");
  CHECK(s.labels.at("io.daemonlet.hash") == d.hash);
  CHECK(s.labels.at("io.daemonlet.container") == "main");
  CHECK(s.labels.at("io.daemonlet.instance") == "i-abc");
  CHECK_FALSE(s.labels.count("io.daemonlet.task-id"));
  CHECK(s.memoryBytes == 64LL << 20);
  CHECK(s.cpuShares == 128);
  CHECK_FALSE(s.nanoCpus);
  REQUIRE(s.healthCheck);
  CHECK(s.healthCheck->interval == 30s);

  auto t = simple("web", 1);
  auto ts = buildContainerSpec(Kind::Task, t, "web-1", t.containers[0], "i-abc");
  CHECK(ts.name.rfind("daemonlet-task-web-1-main-", 0) == 0);
  CHECK(ts.labels.at("io.daemonlet.task-id") == "web-1");
  CHECK(ts.labels.at("io.daemonlet.kind") == "task");
}

TEST_CASE("container names (DESIGN 3.6): never collide across instances, owners, containers and revisions") {
  // Task "a" with container "b-c" and task "a-b" with container "c" read alike; the suffix
  // tells them apart. So do two instances on one engine, and two revisions of a daemon.
  auto bc = def(R"({"family":"x","containerDefinitions":[{"name":"b-c","image":"i","memory":8}]})");
  auto c = def(R"({"family":"x","containerDefinitions":[{"name":"c","image":"i","memory":8}]})");
  const std::string first = containerName(Kind::Task, bc, "a", "b-c", "i-1");
  const std::string second = containerName(Kind::Task, c, "a-b", "c", "i-1");
  CHECK(first.substr(0, first.size() - 12) == second.substr(0, second.size() - 12));
  CHECK(first != second);
  CHECK(containerName(Kind::Task, bc, "a", "b-c", "i-2") != first);
  auto r1 = simple("metrics", 1), r1changed = simple("metrics", 1, 128);
  CHECK(containerName(Kind::Daemon, r1, "", "main", "i-1") != containerName(Kind::Daemon, r1changed, "", "main", "i-1"));
  CHECK(containerName(Kind::Daemon, r1, "", "main", "i-1") == containerName(Kind::Daemon, r1, "", "main", "i-1"));
  CHECK(containerName(Kind::Daemon, r1, "", "main", "i-1") != containerName(Kind::Task, r1, "metrics", "main", "i-1"));
}

TEST_CASE("container specs: only what the definition asks for") {
  auto d = def(R"({"family":"f","cpu":"512","memory":"256","networkMode":"host","volumes":[{"name":"logs","host":{"sourcePath":"/var/log"}},{"name":"scratch"}],
    "containerDefinitions":[{"name":"a","image":"i","memoryReservation":64,"portMappings":[{"containerPort":80}],
      "mountPoints":[{"sourceVolume":"logs","containerPath":"/logs","readOnly":true},{"sourceVolume":"scratch","containerPath":"/s"}],
      "environment":[{"name":"A","value":"from-definition"}],
      "linuxParameters":{"capabilities":{"add":["NET_ADMIN"]},"tmpfs":[{"containerPath":"/run","size":8}]}}]})");
  auto s = buildContainerSpec(Kind::Task, d, "t1", d.containers[0], "i", {"A=from-file", "B=2"});
  CHECK(s.networkMode == "host");
  CHECK(s.ports.empty());  // host networking publishes nothing
  // Task-level cpu and memory are the limits of the task's parent cgroup (TaskCgroupTest),
  // not a cap on each container: three containers must not get three times the memory.
  CHECK_FALSE(s.memoryBytes);
  CHECK(s.memoryReservationBytes == 64LL << 20);
  CHECK_FALSE(s.nanoCpus);
  CHECK(s.env == std::vector<std::string>{"A=from-definition", "B=2"});
  REQUIRE(s.mounts.size() == 3);
  CHECK(s.mounts[0].type == runtime::Mount::Type::Bind);
  CHECK(s.mounts[0].readOnly);
  CHECK(s.mounts[1].type == runtime::Mount::Type::Volume);
  CHECK(s.mounts[1].source.rfind("daemonlet-task-t1-scratch-", 0) == 0);
  CHECK(s.mounts[2].tmpfsSizeBytes == 8LL << 20);
  CHECK(s.capAdd == std::vector<std::string>{"NET_ADMIN"});
  CHECK_FALSE(s.privileged);
  CHECK_FALSE(s.readOnlyRootfs);
}
