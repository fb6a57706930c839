#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"

using namespace daemonlet;
using namespace daemonlet::test;
using namespace std::chrono_literals;

TEST_CASE("container specs: names and labels of DESIGN 3.6") {
  auto d = simple("metrics", 3, 64, true, 128);
  auto s = buildContainerSpec(Kind::Daemon, d, "", d.containers[0], "i-abc");
  CHECK(s.name == "daemonlet-daemon-metrics-3-" + d.hash.substr(0, 8) + "-main");
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
  CHECK(ts.name == "daemonlet-task-web-1-main");
  CHECK(ts.labels.at("io.daemonlet.task-id") == "web-1");
  CHECK(ts.labels.at("io.daemonlet.kind") == "task");
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
  CHECK(s.memoryBytes == 256LL << 20);  // task-level memory caps a container without its own
  CHECK(s.memoryReservationBytes == 64LL << 20);
  CHECK(s.nanoCpus == 500'000'000);
  CHECK(s.env == std::vector<std::string>{"A=from-definition", "B=2"});
  REQUIRE(s.mounts.size() == 3);
  CHECK(s.mounts[0].type == runtime::Mount::Type::Bind);
  CHECK(s.mounts[0].readOnly);
  CHECK(s.mounts[1].type == runtime::Mount::Type::Volume);
  CHECK(s.mounts[1].source == "daemonlet-task-t1-scratch");
  CHECK(s.mounts[2].tmpfsSizeBytes == 8LL << 20);
  CHECK(s.capAdd == std::vector<std::string>{"NET_ADMIN"});
  CHECK_FALSE(s.privileged);
  CHECK_FALSE(s.readOnlyRootfs);
}
