// awsvpc (DESIGN 3.3): one network namespace per copy, held by a network holder that
// exists before any of the copy's containers; its address is the task's; host ports are
// held while a copy lives, and a second task asking for one is STOPPED with RESOURCE:PORTS.
#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"

using namespace daemonlet;
using namespace daemonlet::test;
using namespace std::chrono_literals;

namespace {

config::TaskDefinition pair(int hostPort) {
  return def(fmt::format(R"({{"family":"pair","networkMode":"awsvpc","containerDefinitions":[
    {{"name":"app","image":"i","memory":32,"portMappings":[{{"containerPort":{0},"hostPort":{0}}}]}},
    {{"name":"sidecar","image":"i","memory":16,"essential":false}}]}})", hostPort));
}

World withGateOpen() {
  World w;
  w.memory.gateOpenedAt = w.now;
  return w;
}

}  // namespace

TEST_CASE("awsvpc: containers share the holder's namespace, and ports are published by the holder") {
  auto d = pair(18080);
  auto holder = buildNetworkHolderSpec(Kind::Task, d, "t1", "i-1", "daemonlet/pause:x", "daemonlet0");
  CHECK(holder.name == containerName(Kind::Task, d, "t1", kNetworkHolder, "i-1"));
  CHECK(holder.networkMode == "daemonlet0");
  REQUIRE(holder.ports.size() == 1);
  CHECK(holder.ports[0].containerPort == 18080);
  CHECK(holder.ports[0].hostPort == 18080);
  CHECK(holder.readOnlyRootfs);
  CHECK(holder.capDrop == std::vector<std::string>{"ALL"});
  CHECK(holder.labels.at("io.daemonlet.container") == kNetworkHolder);
  CHECK(holder.labels.at("io.daemonlet.host-ports") == "18080/tcp");
  for (const auto& c : d.containers) {
    auto s = buildContainerSpec(Kind::Task, d, "t1", c, "i-1");
    CHECK(s.networkMode == "container:" + holder.name);
    CHECK(s.ports.empty());  // the engine refuses ports on a container:<id> member
  }
  CHECK(hostPortsOf(d) == std::vector<std::string>{"18080/tcp"});
  auto host = def(R"({"family":"h","networkMode":"host","containerDefinitions":[{"name":"a","image":"i","memory":8,"portMappings":[{"containerPort":9100}]}]})");
  CHECK(hostPortsOf(host) == std::vector<std::string>{"9100/tcp"});
  auto bridge = def(R"({"family":"b","containerDefinitions":[{"name":"a","image":"i","memory":8,"portMappings":[{"containerPort":80}]}]})");
  CHECK(hostPortsOf(bridge).empty());  // the engine picks: nothing to collide
}

TEST_CASE("awsvpc: the network holder runs before any container of the task is created, the task reports its address") {
  World w = withGateOpen();
  w.desired.tasks.push_back({"t1", pair(18080)});
  Plan p = w.step();
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].type == Action::Type::Create);
  CHECK(p.actions[0].container == kNetworkHolder);
  w.apply(p);
  p = w.step();  // created: started, still alone
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].type == Action::Type::Start);
  CHECK(p.actions[0].containerName == w.taskContainer("t1", kNetworkHolder));
  w.apply(p);
  w.settle();
  CHECK(w.running(Kind::Task, "t1").size() == 3);
  p = w.step();
  const auto* s = taskStatus(p, "t1");
  REQUIRE(s);
  CHECK(s->status == Status::Running);
  CHECK(s->address.rfind("172.30.0.", 0) == 0);

  // The holder dies: the namespace is gone, and the task with it (replaced after backoff).
  w.exit(w.taskContainer("t1", kNetworkHolder), 137);
  p = w.step();
  s = taskStatus(p, "t1");
  CHECK(s->stoppedReason.find("network namespace holder exited") != std::string::npos);
  CHECK(count(p, Action::Type::Stop, Kind::Task, "t1") == 2);
}

TEST_CASE("ports: a second task asking for a host port that a live task holds is STOPPED with RESOURCE:PORTS") {
  World w = withGateOpen();
  w.desired.tasks.push_back({"a", pair(18080)});
  w.desired.tasks.push_back({"b", pair(18080)});
  w.desired.tasks.push_back({"c", pair(18081)});
  Plan p = w.step();
  CHECK(taskStatus(p, "a")->status == Status::Activating);
  CHECK(taskStatus(p, "b")->status == Status::Stopped);
  CHECK(taskStatus(p, "b")->stoppedReason == "RESOURCE:PORTS");
  CHECK(taskStatus(p, "c")->status == Status::Activating);
  CHECK(count(p, Action::Type::Create, Kind::Task, "b") == 0);
  w.apply(p);
  w.settle();
  p = w.step();
  CHECK(taskStatus(p, "a")->status == Status::Running);
  CHECK(taskStatus(p, "b")->stoppedReason == "RESOURCE:PORTS");  // held while a lives (label on its containers)

  // a goes away: b gets the port.
  w.desired.tasks.erase(w.desired.tasks.begin());
  w.settle();
  p = w.step();
  CHECK(taskStatus(p, "b")->status == Status::Running);
}

TEST_CASE("ports: a host port the engine refuses (held outside daemonlet) stops the task with RESOURCE:PORTS until its backoff ends") {
  World w = withGateOpen();
  w.desired.tasks.push_back({"a", pair(18080)});
  Plan p = w.step();
  w.apply(p);
  p = w.step();  // start the holder: the engine says the port is taken
  REQUIRE(p.actions.size() == 1);
  const std::string holder = p.actions[0].containerName;
  Backoff& b = w.memory.createFailures[holder];
  b.failures = 1;
  b.reason = std::string(kPortsInUse) + ": start container x: Bind for 0.0.0.0:18080 failed: port is already allocated";
  b.retryAt = w.now + 1s;
  p = w.step();
  const auto* s = taskStatus(p, "a");
  CHECK(s->status == Status::Stopped);
  CHECK(s->stoppedReason == "RESOURCE:PORTS");
  CHECK(count(p, Action::Type::Remove, Kind::Task, "a") == 1);  // the holder goes: nothing is kept half-made
  REQUIRE(p.wakeAt);
  CHECK(*p.wakeAt == w.now + 1s);
  w.apply(p);
  w.now += 2s;  // the backoff ended: tried again
  p = w.step();
  CHECK(taskStatus(p, "a")->status == Status::Activating);
  CHECK(count(p, Action::Type::Create, Kind::Task, "a") == 1);
}

// ECS stops the pause container last: the namespace, and the host ports its holder
// publishes, stay while the application containers wind down within their stopTimeout.
TEST_CASE("awsvpc: a stopping copy's network holder is stopped only once every other container of it has exited") {
  for (const char* how : {"removed", "draining"}) {
    INFO(how);
    World w = withGateOpen();
    w.desired.tasks.push_back({"t1", pair(18080)});
    w.settle();
    REQUIRE(w.running(Kind::Task, "t1").size() == 3);
    const std::string holder = w.taskContainer("t1", kNetworkHolder);
    const std::string app = w.taskContainer("t1", "app");
    const std::string sidecar = w.taskContainer("t1", "sidecar");
    if (std::string(how) == "removed") w.desired.tasks.clear();
    else w.drain = true;
    Plan p = w.step();
    CHECK(count(p, Action::Type::Stop, Kind::Task, "t1") == 2);
    for (const auto& a : p.actions) CHECK(a.containerName != holder);
    // The sidecar is gone, the app still winds down (its stop is under way): the holder waits.
    w.exit(sidecar, 143);
    w.taskInFlight = true;
    p = w.step();
    for (const auto& a : p.actions) CHECK(a.containerName != holder);
    w.exit(app, 143);
    w.taskInFlight = false;
    p = w.step();
    REQUIRE(count(p, Action::Type::Stop, Kind::Task, "t1") == 1);
    CHECK(std::any_of(p.actions.begin(), p.actions.end(), [&](const Action& a) { return a.type == Action::Type::Stop && a.containerName == holder; }));
    w.apply(p);
    w.settle();
    CHECK(w.running(Kind::Task, "t1").empty());
  }
}
