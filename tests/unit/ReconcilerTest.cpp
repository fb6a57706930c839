// One scenario per rule of the reconciler (DESIGN 1, 4), with plain values.
#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"

using namespace daemonlet;
using namespace daemonlet::test;
using namespace std::chrono_literals;
using Type = agent::Action::Type;

TEST_CASE("backoff: 1 s doubling, capped at 5 min") {
  CHECK(backoffDelay(1) == 1s);
  CHECK(backoffDelay(2) == 2s);
  CHECK(backoffDelay(5) == 16s);
  CHECK(backoffDelay(9) == 256s);
  CHECK(backoffDelay(10) == 300s);
  CHECK(backoffDelay(50) == 300s);
}

TEST_CASE("slot gate (P2): no application container before every critical daemon is up") {
  World w;
  w.desired.daemons = {simple("metrics", 1, 64, true), simple("logs", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};

  Plan first = w.step();
  CHECK(first.phase == Phase::DaemonsPending);
  CHECK(count(first, Type::Create, Kind::Daemon) == 2);  // daemons start in parallel
  CHECK(count(first, Type::Create, Kind::Task) == 0);
  CHECK(taskStatus(first, "web-1")->status == Status::Pending);

  w.apply(first, /*healthy=*/false);
  Plan second = w.step();
  w.apply(second, /*healthy=*/false);  // started, health check still starting
  Plan third = w.step();
  CHECK_FALSE(third.memory.gateOpenedAt);
  CHECK(count(third, Type::Create, Kind::Task) == 0);
  CHECK(daemonStatus(third, "metrics")->status == Status::Activating);
  CHECK(daemonStatus(third, "logs")->ready);

  w.find(w.daemonContainer(0))->health = runtime::Health::Healthy;
  Plan open = w.step();
  REQUIRE(open.memory.gateOpenedAt);
  CHECK(open.phase == Phase::Active);
  CHECK(count(open, Type::Create, Kind::Task) == 1);
  CHECK(std::find_if(open.notes.begin(), open.notes.end(), [](const std::string& n) { return n.find("slot gate open: 2/2 critical daemons up") != std::string::npos; }) != open.notes.end());
}

TEST_CASE("slot gate: a non-critical daemon holds nothing") {
  World w;
  w.desired.daemons = {simple("tracer", 1, 64, false, 0)};
  w.desired.daemons[0].critical = false;
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  Plan p = w.step();
  CHECK(p.memory.gateOpenedAt);
  CHECK(count(p, Type::Create, Kind::Daemon) == 1);
  CHECK(count(p, Type::Create, Kind::Task) == 1);  // at the same time
}

TEST_CASE("slot gate: the timeout opens it anyway, loudly") {
  World w;
  w.settings.slotGateTimeout = 30s;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.apply(w.step(), false);
  w.apply(w.step(), false);
  w.now += 29s;
  CHECK_FALSE(w.step().memory.gateOpenedAt);
  w.now += 2s;
  Plan p = w.step();
  REQUIRE(p.memory.gateOpenedAt);
  CHECK(p.memory.gateReason.find("timeout after 30 s") != std::string::npos);
  CHECK(p.memory.gateReason.find("metrics") != std::string::npos);
  CHECK(count(p, Type::Create, Kind::Task) == 1);
}

TEST_CASE("slot gate: opens once, a daemon crash later restarts it with backoff, apps keep running") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  REQUIRE(w.running(Kind::Task).size() == 1);
  const std::string daemon = w.running(Kind::Daemon)[0]->id;

  w.exit(daemon, 1);
  Plan restart = w.step();
  CHECK(restart.memory.gateOpenedAt);  // still open
  CHECK(count(restart, Type::Start, Kind::Daemon) == 1);
  CHECK(count(restart, Type::Stop, Kind::Task) == 0);  // P2: running applications are not stopped
  CHECK(restart.memory.restartCounts.at("metrics") == 1);
  w.apply(restart);
  w.exit(daemon, 1);
  CHECK(count(w.step(), Type::Start, Kind::Daemon) == 0);  // within the 1 s backoff
  w.now += 1s;
  Plan again = w.step();
  CHECK(count(again, Type::Start, Kind::Daemon) == 1);
  CHECK(again.memory.restarts.at("metrics").failures == 2);
  CHECK(again.memory.restarts.at("metrics").retryAt == w.now + 2s);
}

TEST_CASE("rolling update (P1, DESIGN 4): start new beside old, stop old only once new is up") {
  World w;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.settle();
  const std::string oldId = w.running(Kind::Daemon)[0]->id;

  w.desired.daemons = {simple("metrics", 2, 64, true)};
  Plan rollout = w.step();
  CHECK(count(rollout, Type::Create, Kind::Daemon) == 1);
  CHECK(count(rollout, Type::Stop, Kind::Daemon) == 0);
  w.apply(rollout);
  Plan start = w.step();
  CHECK(count(start, Type::Stop, Kind::Daemon) == 0);
  w.apply(start, /*healthy=*/false);
  Plan notHealthy = w.step();
  CHECK(count(notHealthy, Type::Stop, Kind::Daemon) == 0);  // RUNNING is not enough: HEALTHY declared
  CHECK(w.running(Kind::Daemon).size() == 2);
  CHECK(notHealthy.daemonReserved.memory == 128);  // both copies hold their reservation

  for (auto& c : w.observed.containers) {
    if (c.id != oldId) c.health = runtime::Health::Healthy;
  }
  Plan swap = w.step();
  REQUIRE(count(swap, Type::Stop, Kind::Daemon) == 1);
  CHECK(swap.actions[0].containerId == oldId);
  w.apply(swap);
  w.settle();
  REQUIRE(w.running(Kind::Daemon).size() == 1);
  CHECK(w.running(Kind::Daemon)[0]->revision == 2);
  CHECK(w.observed.containers.size() == 1);  // the old one is removed too
}

TEST_CASE("rolling update: a content change without a revision bump still rolls, with a warning") {
  World w;
  w.desired.daemons = {simple("metrics", 3, 64)};
  w.settle();
  w.desired.daemons = {simple("metrics", 3, 96)};
  Plan p = w.step();
  CHECK(count(p, Type::Create, Kind::Daemon) == 1);
  CHECK(std::any_of(p.notes.begin(), p.notes.end(), [](const std::string& n) { return n.find("was not bumped") != std::string::npos; }));
}

TEST_CASE("rolling update: a failing new revision is removed, the old keeps running, retried with backoff") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.settle();
  const std::string oldId = w.running(Kind::Daemon)[0]->id;
  w.desired.daemons = {simple("metrics", 2)};
  w.apply(w.step());
  w.apply(w.step());
  const std::string newName = w.daemonContainer(0);
  w.exit(newName, 2);

  Plan failed = w.step();
  CHECK(count(failed, Type::Stop, Kind::Daemon) == 0);
  CHECK(count(failed, Type::Remove, Kind::Daemon) == 1);
  REQUIRE(failed.memory.failedRollouts.count("metrics"));
  CHECK(failed.memory.failedRollouts.at("metrics").reason.find("exited with code 2") != std::string::npos);
  CHECK(daemonStatus(failed, "metrics")->lastError.find("rollout of r2 failed") != std::string::npos);
  w.apply(failed);
  CHECK(w.find(oldId)->running());
  CHECK(count(w.step(), Type::Create, Kind::Daemon) == 0);  // backing off
  w.now += 1s;
  CHECK(count(w.step(), Type::Create, Kind::Daemon) == 1);  // retried
}

TEST_CASE("rolling update: a new revision that never gets healthy times out") {
  World w;
  w.settings.defaultStartTimeout = 60s;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.settle();
  w.desired.daemons = {simple("metrics", 2, 64, true)};
  w.apply(w.step());
  w.apply(w.step(), false);
  w.now += 61s;
  Plan p = w.step();
  CHECK(p.memory.failedRollouts.at("metrics").reason.find("not RUNNING and HEALTHY within 60 s") != std::string::npos);
  CHECK(count(p, Type::Stop, Kind::Daemon, "metrics") == 1);  // the new one, not the old
  CHECK(p.actions[0].containerName.find("metrics-2-") != std::string::npos);
}

TEST_CASE("one copy (P1): extra copies left by a crash are stopped, the newest stands in") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.settle();
  w.desired.daemons = {simple("metrics", 2)};
  w.settle();  // r2 running, r1 gone
  // Pretend an older agent crashed mid-rollout twice: r1 and r2 running, r3 desired.
  w.desired.daemons = {simple("metrics", 1)};
  w.apply(w.step());
  w.apply(w.step());
  REQUIRE(w.running(Kind::Daemon).size() == 2);
  w.desired.daemons = {simple("metrics", 3)};
  Plan p = w.step();
  REQUIRE(count(p, Type::Stop, Kind::Daemon) == 1);
  const auto& stop = *std::find_if(p.actions.begin(), p.actions.end(), [](const Action& a) { return a.type == Type::Stop; });
  CHECK(w.find(stop.containerId)->revision == 1);  // oldest goes first; r2 serves until r3 is up
  CHECK(count(p, Type::Create, Kind::Daemon) == 1);
}

TEST_CASE("reservations (P3): admitted by id while they fit, the rest STOPPED with the reason") {
  World w;
  w.capacity = {1024, 1024};
  w.desired.daemons = {simple("metrics", 1, 512, false, 256)};
  w.desired.tasks = {{"a", simple("web", 1, 256, false, 256)},
                     {"b", simple("big", 1, 384, false, 128)},
                     {"c", simple("small", 1, 128, false, 128)},
                     {"d", simple("cpu", 1, 64, false, 2048)}};
  w.settle();
  Plan p = w.step();
  CHECK(taskStatus(p, "a")->status == Status::Running);
  CHECK(taskStatus(p, "b")->status == Status::Stopped);
  CHECK(taskStatus(p, "b")->stoppedReason == "RESOURCE:MEMORY");
  CHECK(taskStatus(p, "c")->status == Status::Running);
  CHECK(taskStatus(p, "d")->stoppedReason == "RESOURCE:CPU");
  CHECK(p.daemonReserved == Resources{256, 512});
  CHECK(p.available == Resources{1024 - 256 - 256 - 128, 1024 - 512 - 256 - 128});

  SECTION("a task that did not fit starts when room appears") {
    w.desired.tasks.erase(w.desired.tasks.begin());  // a goes
    w.settle();
    CHECK(taskStatus(w.step(), "b")->status == Status::Running);
  }
  SECTION("running tasks are never evicted when daemons grow") {
    w.desired.daemons = {simple("metrics", 2, 900, false, 256)};
    Plan grow = w.step();
    CHECK(count(grow, Type::Stop, Kind::Task) == 0);
    w.apply(grow);
    w.settle();
    CHECK(w.running(Kind::Task).size() == 2);
  }
}

TEST_CASE("tasks: restart never: an essential container exit stops the task for good") {
  World w;
  w.desired.tasks = {{"job", def(R"({"family":"job","containerDefinitions":[
      {"name":"main","image":"i","memory":64},{"name":"side","image":"i","memory":64,"essential":false}]})"), config::TaskRestart::Never}};
  w.settle();
  REQUIRE(w.running(Kind::Task).size() == 2);
  w.exit(w.taskContainer("job"), 0);
  Plan p = w.step();
  CHECK(count(p, Type::Stop, Kind::Task) == 1);  // the sidecar
  w.apply(p);
  Plan after = w.step();
  CHECK(count(after, Type::Start, Kind::Task) == 0);
  CHECK(count(after, Type::Create, Kind::Task) == 0);
  CHECK(taskStatus(after, "job")->status == Status::Stopped);
  CHECK(taskStatus(after, "job")->stoppedReason.find("Essential container in task exited") == 0);
  CHECK(after.available.memory == w.capacity.memory);  // a stopped task holds nothing
  w.now += 10min;
  CHECK(w.step().actions.empty());
}

TEST_CASE("tasks: restartPolicy restarts a container that ran long enough, as ECS does") {
  World w;
  w.desired.tasks = {{"job", simple("job", 1, 64, false, 0, R"(,"restartPolicy":{"enabled":true,"ignoredExitCodes":[0],"restartAttemptPeriod":60})")}};
  w.settle();
  w.desired.tasks[0].restart = config::TaskRestart::Never;  // only the in-place restart of ECS
  auto* c = w.find(w.taskContainer("job"));
  SECTION("ran 2 minutes, exit 1: restarted in place") {
    w.now += 120s;
    w.exit(c->id, 1);
    Plan p = w.step();
    REQUIRE(count(p, Type::Start, Kind::Task) == 1);
    CHECK(p.actions[0].containerId == c->id);
    CHECK(taskStatus(p, "job")->status != Status::Stopped);
  }
  SECTION("ran 10 s: not restarted (restartAttemptPeriod)") {
    w.now += 10s;
    w.exit(c->id, 1);
    Plan p = w.step();
    CHECK(count(p, Type::Start, Kind::Task) == 0);
    CHECK(taskStatus(p, "job")->status == Status::Stopped);
  }
  SECTION("an ignored exit code: the task stops") {
    w.now += 120s;
    w.exit(c->id, 0);
    CHECK(taskStatus(w.step(), "job")->status == Status::Stopped);
  }
  SECTION("a restart the engine refused waits out its backoff, and the task is not failed meanwhile") {
    // Found by the chaos campaign: it was planned again on every pass, at engine speed.
    w.now += 120s;
    w.exit(c->id, 1);
    Backoff refused;
    refused.failures = 1;
    refused.reason = "engine: cannot start container";
    refused.retryAt = w.now + 2s;
    w.memory.createFailures[c->name] = refused;
    Plan p = w.plan();
    CHECK(count(p, Type::Start, Kind::Task) == 0);
    CHECK(taskStatus(p, "job")->status != Status::Stopped);
    CHECK(count(p, Type::Stop, Kind::Task) == 0);
    REQUIRE(p.wakeAt);
    CHECK(*p.wakeAt == refused.retryAt);
    w.now += 2s;
    Plan later = w.plan();
    REQUIRE(count(later, Type::Start, Kind::Task) == 1);
    CHECK(later.actions[0].containerId == c->id);
  }
}

TEST_CASE("tasks: a changed definition under the same id is stopped, then started again, no overlap") {
  World w;
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  w.desired.tasks = {{"web-1", simple("web", 2)}};
  Plan p = w.step();
  CHECK(count(p, Type::Stop, Kind::Task) == 1);
  CHECK(count(p, Type::Create, Kind::Task) == 0);
  w.apply(p);
  Plan removed = w.step();
  CHECK(count(removed, Type::Remove, Kind::Task) == 1);
  CHECK(count(removed, Type::Create, Kind::Task) == 0);
  w.apply(removed);
  CHECK(count(w.step(), Type::Create, Kind::Task) == 1);
}

TEST_CASE("dependsOn: an init container must succeed before the main one starts") {
  World w;
  w.desired.daemons = {def(R"({"family":"shipper","containerDefinitions":[
      {"name":"init","image":"i","memory":16,"essential":false},
      {"name":"main","image":"i","memory":64,"dependsOn":[{"containerName":"init","condition":"SUCCESS"}]}]})")};
  w.apply(w.step());
  Plan p = w.step();
  REQUIRE(count(p, Type::Start, Kind::Daemon) == 1);
  CHECK(p.actions[0].containerName.find("-init") != std::string::npos);
  w.apply(p);
  CHECK(count(w.step(), Type::Start, Kind::Daemon) == 0);  // init still running
  const std::string init = p.actions[0].containerName;

  SECTION("init succeeded") {
    w.exit(init, 0);
    Plan next = w.step();
    REQUIRE(count(next, Type::Start, Kind::Daemon) == 1);
    CHECK(next.actions[0].containerName.find("-main") != std::string::npos);
  }
  SECTION("init failed: the daemon is failed, main not started; init runs again (the restart backoff)") {
    w.exit(init, 1);
    Plan next = w.step();
    REQUIRE(count(next, Type::Start, Kind::Daemon) == 1);
    for (const auto& a : next.actions) CHECK(a.containerName.find("-main") == std::string::npos);
    CHECK(next.actions[0].containerName.find("-init") != std::string::npos);
    w.apply(next);
    w.exit(init, 1);
    CHECK(count(w.step(), Type::Start, Kind::Daemon) == 0);  // the second try waits for the backoff
    CHECK(daemonStatus(next, "shipper")->lastError.find("cannot start: init exited with code 1") != std::string::npos);
  }
}

// Found by the chaos campaign (seed 8037622186): the engine was killed while prep's init
// container ran; it came back exited 255, main (created, never started) could never start,
// and every restart of the daemon only restarted essential containers, which main could not
// be: prep stayed down for good, and with it the slot gate.
TEST_CASE("dependsOn: a daemon restart runs again the init container it needs, then starts main") {
  World w;
  w.desired.daemons = {def(R"({"family":"prep","containerDefinitions":[
      {"name":"init","image":"i","memory":16,"essential":false},
      {"name":"main","image":"i","memory":64,"dependsOn":[{"containerName":"init","condition":"SUCCESS"}]}]})")};
  w.apply(w.step());  // both created
  w.apply(w.step());  // init started
  const std::string init = w.daemonContainer(0, "init"), main = w.daemonContainer(0, "main");
  REQUIRE(w.find(init)->running());
  w.exit(init, 255);  // died with the engine
  bool initAgain = false;
  for (int round = 0; round < 12 && !initAgain; ++round) {
    Plan p = w.step();
    for (const auto& a : p.actions) {
      if (a.type == Type::Start && a.containerId == w.find(init)->id) initAgain = true;
      CHECK_FALSE((a.type == Type::Start && a.containerId == w.find(main)->id));  // not before init succeeded
    }
    w.apply(p);
    w.now += std::chrono::minutes(5);  // past any backoff
  }
  REQUIRE(initAgain);
  w.exit(init, 0);
  w.settle();
  w.now += std::chrono::minutes(5);
  w.settle();
  CHECK(w.find(main)->running());
}

TEST_CASE("drain (P4): applications stop with their stopTimeout, daemons keep running") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1, 64, false, 0, R"(,"stopTimeout":12)")}};
  w.settle();
  w.desired.instanceStatus = config::InstanceStatus::Draining;
  Plan p = w.step();
  CHECK(p.phase == Phase::Draining);
  REQUIRE(count(p, Type::Stop, Kind::Task) == 1);
  CHECK(p.actions[0].stopTimeout == 12s);
  CHECK(count(p, Type::Stop, Kind::Daemon) == 0);
  w.apply(p);
  CHECK(w.step().phase == Phase::Draining);  // not confirmed by the runtime yet
  w.confirmed = true;
  Plan drained = w.step();
  CHECK(drained.phase == Phase::Drained);
  CHECK(count(drained, Type::Stop, Kind::Daemon) == 0);
  CHECK(count(drained, Type::Remove, Kind::Task) == 1);  // so that it can start again later
  w.apply(drained);
  CHECK(w.step().converged);
  CHECK(w.running(Kind::Daemon).size() == 1);

  SECTION("a daemon that dies while draining is restarted") {
    w.exit(w.running(Kind::Daemon)[0]->id, 137);
    CHECK(count(w.step(), Type::Start, Kind::Daemon) == 1);
  }
  SECTION("back to ACTIVE: the drained tasks start again") {
    w.settle();  // the stopped task's containers are removed
    CHECK(std::none_of(w.observed.containers.begin(), w.observed.containers.end(), [](const auto& c) { return c.kind == Kind::Task; }));
    w.desired.instanceStatus = config::InstanceStatus::Active;
    Plan active = w.step();
    CHECK(active.phase == Phase::Active);
    CHECK(count(active, Type::Create, Kind::Task) == 1);
  }
}

TEST_CASE("shutdown (P4): daemons stop only after applications are confirmed gone") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1)}, {"web-2", simple("web", 1)}};
  w.settle();
  w.shutdown = true;
  Plan p = w.step();
  CHECK(p.phase == Phase::Draining);
  CHECK(count(p, Type::Stop, Kind::Task) == 2);
  CHECK(count(p, Type::Stop, Kind::Daemon) == 0);
  w.apply(p);
  w.taskInFlight = true;  // a stop still under way
  w.confirmed = true;
  CHECK(w.step().phase == Phase::Draining);
  w.taskInFlight = false;
  CHECK(w.step().phase == Phase::Drained);
  Plan stopping = w.step();
  CHECK(stopping.phase == Phase::StoppingDaemons);
  CHECK(count(stopping, Type::Stop, Kind::Daemon) == 1);
  w.apply(stopping);
  Plan stopped = w.step();
  CHECK(stopped.phase == Phase::Stopped);
  CHECK(count(stopped, Type::Start, Kind::Daemon) == 0);  // no restarts now
}

TEST_CASE("removals: gone from the desired state means stopped and removed, tasks before daemons") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  w.desired = {};
  Plan p = w.step();
  CHECK(count(p, Type::Stop, Kind::Task) == 1);
  CHECK(count(p, Type::Stop, Kind::Daemon) == 0);  // waits for the task
  w.apply(p);
  w.settle();
  CHECK(w.observed.containers.empty());
}

TEST_CASE("adoption: an agent restarted with everything running plans nothing") {
  World w;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  w.memory = {};  // a new agent process knows nothing but what the runtime says
  w.phase = Phase::Starting;
  Plan p = w.step();
  CHECK(p.actions.empty());
  CHECK(p.converged);
  CHECK(p.phase == Phase::Active);
}

// ---- issue 10: real hosts -------------------------------------------------------------

TEST_CASE("task restarts (DESIGN 3.4): a task that stops on its own is reported, then replaced after backoff") {
  World w;
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  const std::string first = w.running(Kind::Task)[0]->id;
  w.exit(first, 3);
  Plan stopped = w.step();
  const TaskStatus* s = taskStatus(stopped, "web-1");
  CHECK(s->status == Status::Stopped);
  CHECK(s->stoppedReason.find("exited with code 3") != std::string::npos);
  CHECK(count(stopped, Type::Remove, Kind::Task) == 0);  // backing off: 1 s first
  w.apply(stopped);
  w.now += 1s;
  Plan replace = w.step();
  CHECK(count(replace, Type::Remove, Kind::Task) == 1);
  CHECK(taskStatus(replace, "web-1")->restarts == 1);
  w.apply(replace);
  w.settle();
  REQUIRE(w.running(Kind::Task).size() == 1);
  CHECK(w.running(Kind::Task)[0]->id != first);  // fresh containers

  SECTION("a second failure waits twice as long") {
    w.exit(w.running(Kind::Task)[0]->id, 1);
    w.apply(w.step());
    w.now += 1s;
    CHECK(count(w.step(), Type::Remove, Kind::Task) == 0);
    w.now += 1s;
    CHECK(count(w.step(), Type::Remove, Kind::Task) == 1);
  }
  SECTION("ten minutes of running forgive the failures") {
    w.now += 11min;
    w.step();
    w.now += 1s;
    w.step();
    CHECK_FALSE(w.memory.taskRestarts.count("web-1"));
  }
}

TEST_CASE("task restarts: on-failure keeps a clean exit stopped, but not one the engine caused") {
  World w;
  w.desired.tasks = {{"job", simple("job", 1), config::TaskRestart::OnFailure}};
  w.settle();
  SECTION("exit 0: done") {
    w.exit(w.running(Kind::Task)[0]->id, 0);
    w.apply(w.step());
    w.now += 10min;
    CHECK(w.step().actions.empty());
  }
  SECTION("exit 1: replaced") {
    w.exit(w.running(Kind::Task)[0]->id, 1);
    w.apply(w.step());
    w.now += 1s;
    CHECK(count(w.step(), Type::Remove, Kind::Task) == 1);
  }
  SECTION("exit 0 while the engine was away: replaced") {
    w.outages = {{w.wall() - 1s, w.wall() + 5s}};
    w.exit(w.running(Kind::Task)[0]->id, 0);
    Plan p = w.step();
    CHECK(std::any_of(p.notes.begin(), p.notes.end(), [](const std::string& n) { return n.find("engine or host went away") != std::string::npos; }));
    w.apply(p);
    w.now += 1s;
    CHECK(count(w.step(), Type::Remove, Kind::Task) == 1);
  }
  SECTION("exit 0 before the host booted, while it was running (power loss): replaced") {
    w.exit(w.running(Kind::Task)[0]->id, 0);
    w.hostBootAt = w.wall() + 1s;
    w.runningAtLastSave = {"job"};  // the saved record said RUNNING
    w.apply(w.step());
    w.now += 1s;
    CHECK(count(w.step(), Type::Remove, Kind::Task) == 1);
  }
  SECTION("a one-shot task that had finished before a reboot stays finished") {
    w.exit(w.running(Kind::Task)[0]->id, 0);
    w.hostBootAt = w.wall() + 2h;  // patched and rebooted later
    w.apply(w.step());
    w.now += 10min;
    CHECK(w.step().actions.empty());
  }
}

TEST_CASE("power loss: after the gate opened in this boot, replacements still wait for critical daemons") {
  World w;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.desired.tasks = {{"web-1", simple("web", 1)}, {"web-2", simple("web", 1)}};
  w.settle();
  for (auto& c : w.observed.containers) w.exit(c.id, 137);
  w.now += 5s;
  Plan p = w.step();
  CHECK(count(p, Type::Start, Kind::Daemon) == 1);
  CHECK(count(p, Type::Remove, Kind::Task) == 0);
  w.apply(p, /*healthy=*/false);  // running, health still starting
  for (int i = 0; i < 5; ++i) {
    w.now += 1s;
    Plan waiting = w.step();
    CHECK(count(waiting, Type::Remove, Kind::Task) == 0);
    CHECK(count(waiting, Type::Create, Kind::Task) == 0);
    w.apply(waiting, false);
  }
  w.find(w.daemonContainer(0))->health = runtime::Health::Healthy;
  CHECK(count(w.step(), Type::Remove, Kind::Task) == 2);
}

TEST_CASE("slot gate remembered from earlier in this boot: open at once, new tasks still wait for a down daemon") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.memory.gateOpenedAt = w.now;  // restored by the agent from stateDir/slot-gate
  Plan p = w.step();
  CHECK(p.phase == Phase::Active);
  CHECK(count(p, Type::Create, Kind::Daemon) == 1);
  CHECK(count(p, Type::Create, Kind::Task) == 0);
  CHECK(taskStatus(p, "web-1")->status == Status::Pending);
  w.apply(p);
  w.apply(w.step());
  CHECK(count(w.step(), Type::Create, Kind::Task) == 1);
}

TEST_CASE("rolling update: a timed-out revision being stopped counts as one failure, not one per plan") {
  World w;
  w.settings.defaultStartTimeout = 60s;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.settle();
  w.desired.daemons = {simple("metrics", 2, 64, true)};
  w.apply(w.step());
  w.apply(w.step(), false);
  w.now += 61s;
  for (int i = 0; i < 5; ++i) {
    w.step();  // the stop is under way: nothing applied
    w.now += 1s;
  }
  CHECK(w.memory.failedRollouts.at("metrics").failures == 1);
}

TEST_CASE("steady clock: an engine clock far behind does not time a rollout out") {
  World w;
  w.settings.defaultStartTimeout = 60s;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.settle();
  w.wallOffset = -std::chrono::hours(2);  // the wall clock stepped: containers look 2 h old
  w.desired.daemons = {simple("metrics", 2, 64, true)};
  w.apply(w.step());
  w.apply(w.step(), false);
  w.now += 5s;
  CHECK_FALSE(w.step().memory.failedRollouts.count("metrics"));
}

TEST_CASE("a create failure stops being reported once the container runs") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  Backoff failed;
  failed.failures = 1;
  failed.reason = "create container ...: Conflict";
  failed.retryAt = w.now;
  w.memory.createFailures[w.daemonContainer(0)] = failed;
  w.settle();
  Plan p = w.step();
  CHECK(daemonStatus(p, "metrics")->ready);
  CHECK(daemonStatus(p, "metrics")->lastError.empty());
  CHECK(p.memory.createFailures.empty());
}

TEST_CASE("shutdown before any desired state: tasks, then daemons, all stopped") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  w.desired = {};  // a new agent whose source has not answered yet
  w.memory = {};
  w.phase = Phase::Starting;
  w.shutdown = true;
  Plan p = w.step();
  CHECK(count(p, Type::Stop, Kind::Task) == 1);
  CHECK(count(p, Type::Stop, Kind::Daemon) == 0);
  w.apply(p);
  w.confirmed = true;
  w.settle();
  CHECK(w.phase == Phase::Stopped);
  CHECK(w.running(Kind::Daemon).empty());
}

TEST_CASE("shutdown cancelled after the daemons stopped: they come back at once") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  w.shutdown = true;
  w.apply(w.step());
  w.confirmed = true;
  w.settle();
  REQUIRE(w.phase == Phase::Stopped);
  REQUIRE(w.running(Kind::Daemon).empty());
  w.shutdown = false;
  w.confirmed = false;
  w.settle();
  CHECK(w.running(Kind::Daemon).size() == 1);
  CHECK(w.running(Kind::Task).size() == 1);
  CHECK(w.phase == Phase::Active);
}

// ---- issue 10 review -------------------------------------------------------------------

TEST_CASE("backoff counts a copy of several containers once while they are removed one by one") {
  World w;
  w.desired.tasks = {{"pair", def(R"({"family":"pair","containerDefinitions":[
      {"name":"a","image":"i","memory":16},{"name":"b","image":"i","memory":16}]})")}};
  w.settle();
  for (auto* c : w.running(Kind::Task)) w.exit(c->id, 1);
  w.apply(w.step());
  w.now += 1s;
  Plan removing = w.step();
  REQUIRE(count(removing, Type::Remove, Kind::Task) == 2);
  // The removals finish one at a time, each waking a plan.
  auto first = std::find_if(removing.actions.begin(), removing.actions.end(), [](const Action& a) { return a.type == Type::Remove; });
  Plan one;
  one.actions = {*first};
  w.apply(one);
  Plan between = w.step();
  CHECK(w.memory.taskRestarts.at("pair").failures == 1);
  CHECK(taskStatus(between, "pair")->restarts == 1);  // not one per plan
  w.step();
  CHECK(taskStatus(w.step(), "pair")->restarts == 1);
}

TEST_CASE("a restartPolicy exit while a critical daemon is down waits, the task's other containers keep running") {
  World w;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.desired.tasks = {{"job", def(R"({"family":"job","containerDefinitions":[
      {"name":"main","image":"i","memory":64,"restartPolicy":{"enabled":true,"restartAttemptPeriod":60}},
      {"name":"side","image":"i","memory":16}]})")}};
  w.settle();
  w.find(w.daemonContainer(0))->health = runtime::Health::Unhealthy;  // the daemon flaps
  w.now += 120s;
  w.exit(w.taskContainer("job", "main"), 1);
  Plan p = w.step();
  CHECK(count(p, Type::Stop, Kind::Task) == 0);   // the sidecar is not killed (P2)
  CHECK(count(p, Type::Start, Kind::Task) == 0);  // nor is main started before the daemon is back
  w.find(w.daemonContainer(0))->health = runtime::Health::Healthy;
  Plan back = w.step();
  CHECK(count(back, Type::Start, Kind::Task) == 1);
}

TEST_CASE("a task removed and added again starts afresh, without its old backoff") {
  World w;
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  w.exit(w.running(Kind::Task)[0]->id, 1);
  w.apply(w.step());
  REQUIRE(w.memory.taskRestarts.count("web-1"));
  const auto desired = w.desired;
  w.desired.tasks.clear();
  w.settle();
  CHECK_FALSE(w.memory.taskRestarts.count("web-1"));
  w.desired = desired;
  CHECK(count(w.step(), Type::Create, Kind::Task) == 1);  // no backoff inherited
}

TEST_CASE("agent upgrade (P5): containers labelled with the hash an older daemonlet computed are adopted as they are") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  // What the older version called these definitions; the new parser computes another hash.
  auto daemon = w.desired.daemons[0];
  auto task = w.desired.tasks[0].definition;
  daemon.legacyHash = daemon.hash;
  daemon.hash = "0123456789ab";
  task.legacyHash = task.hash;
  task.hash = "ba9876543210";
  w.desired.daemons = {daemon};
  w.desired.tasks[0].definition = task;
  w.memory = {};
  Plan p = w.step();
  CHECK(p.actions.empty());
  CHECK(daemonStatus(p, "metrics")->ready);
  CHECK(taskStatus(p, "web-1")->status == Status::Running);
}

TEST_CASE("taskPolicy: a task outside it is STOPPED with the reason and never created, daemons are not checked") {
  World w;
  w.taskPolicy.allowPrivileged = false;
  w.desired.daemons = {simple("metrics", 1, 64, false, 0, R"(,"privileged":true)")};
  w.desired.tasks = {{"web-1", simple("web", 1)}, {"root-1", simple("root", 1, 64, false, 0, R"(,"privileged":true)")}};
  w.settle();
  CHECK(w.running(Kind::Daemon, "metrics").size() == 1);  // the platform's own: trusted
  CHECK(w.running(Kind::Task, "web-1").size() == 1);
  Plan p = w.step();
  const TaskStatus* refused = taskStatus(p, "root-1");
  REQUIRE(refused);
  CHECK(refused->status == Status::Stopped);
  CHECK(refused->stoppedReason ==
        "TaskPolicy: field 'containerDefinitions[0].privileged': privileged containers are not allowed (taskPolicy.allowPrivileged is false)");
  CHECK(w.find(w.taskContainer("root-1")) == nullptr);
  CHECK(p.converged);
}

TEST_CASE("taskPolicy: tightened under a running task, the copy keeps running (P5), is reported, and is never started again") {
  World w;
  w.desired.tasks = {{"host-1", simple("host", 1, 64, false, 0, R"(,"privileged":true)")}};
  w.settle();
  REQUIRE(w.running(Kind::Task, "host-1").size() == 1);
  const std::string id = w.running(Kind::Task, "host-1").front()->id;
  w.taskPolicy.allowPrivileged = false;
  Plan p = w.step();
  CHECK(count(p, Type::Stop, Kind::Task, "host-1") == 0);
  CHECK(count(p, Type::Remove, Kind::Task, "host-1") == 0);
  const TaskStatus* s = taskStatus(p, "host-1");
  REQUIRE(s);
  CHECK(s->status == Status::Running);
  CHECK(s->stoppedReason.empty());
  CHECK(s->policyProblem ==
        "TaskPolicy: field 'containerDefinitions[0].privileged': privileged containers are not allowed (taskPolicy.allowPrivileged is false); "
        "the running copy is kept, no new copy starts");
  // One warning, worded the same in every plan so that the agent logs it once.
  CHECK(std::count_if(p.notes.begin(), p.notes.end(), [](const std::string& n) { return n.rfind("WARNING: task host-1: running outside taskPolicy", 0) == 0; }) == 1);
  w.settle();
  REQUIRE(w.running(Kind::Task, "host-1").size() == 1);
  CHECK(w.running(Kind::Task, "host-1").front()->id == id);
  // Once it stops on its own it is not replaced: a new start would be outside the policy.
  w.exit(id, 1);
  w.now += 1h;
  w.settle();
  CHECK(w.running(Kind::Task, "host-1").empty());
  Plan after = w.step();
  const TaskStatus* gone = taskStatus(after, "host-1");
  REQUIRE(gone);
  CHECK(gone->status == Status::Stopped);
  CHECK(gone->stoppedReason.rfind("TaskPolicy: field 'containerDefinitions[0].privileged'", 0) == 0);
  CHECK(gone->policyProblem.empty());
}

TEST_CASE("taskPolicy: a changed definition outside the policy leaves the old copy running and starts nothing") {
  World w;
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  REQUIRE(w.running(Kind::Task, "web-1").size() == 1);
  const std::string id = w.running(Kind::Task, "web-1").front()->id;
  w.taskPolicy.allowPrivileged = false;
  w.desired.tasks = {{"web-1", simple("web", 2, 64, false, 0, R"(,"privileged":true)")}};
  Plan p = w.step();
  CHECK(p.actions.empty());
  CHECK(taskStatus(p, "web-1")->status == Status::Running);
  CHECK(!taskStatus(p, "web-1")->policyProblem.empty());
  w.settle();
  CHECK(w.running(Kind::Task, "web-1").front()->id == id);
}

TEST_CASE("a task that cannot start as defined (a missing secret) is STOPPED with the reason, holds nothing, and is tried again") {
  World w;
  w.capacity = {4096, 200};  // room for one of the two tasks
  w.desired.tasks = {{"web-2", simple("web", 1, 128)}};
  w.phase = Phase::Active;
  w.settle();  // opens the slot gate (no daemons)
  w.observed.containers.clear();
  Backoff failed;
  failed.failures = 1;
  failed.reason = "ResourceInitializationError: secret DB_PASSWORD not found (no readable file /etc/daemonlet/secrets/db)";
  failed.stopsTask = true;
  failed.retryAt = w.now + 1s;
  w.memory.createFailures[w.taskContainer("web-2")] = failed;
  w.desired.tasks = {{"web-2", simple("web", 1, 128)}, {"web-3", simple("api", 1, 128)}};
  Plan p = w.step();
  const TaskStatus* s = taskStatus(p, "web-2");
  REQUIRE(s);
  CHECK(s->status == Status::Stopped);
  CHECK(s->stoppedReason == failed.reason);
  CHECK(count(p, Action::Type::Create, Kind::Task, "web-2") == 0);
  CHECK(count(p, Action::Type::Create, Kind::Task, "web-3") == 1);  // its reservation was free for another
  REQUIRE(p.wakeAt);
  CHECK(*p.wakeAt == failed.retryAt);
  w.now += 1s;  // the backoff is over: it is tried again
  w.memory = p.memory;
  Plan again = w.plan();
  CHECK(count(again, Action::Type::Create, Kind::Task, "web-2") == 1);
  CHECK(taskStatus(again, "web-2")->status == Status::Activating);
}

// Found by the chaos campaign (tests/chaos, seed 558342005596): the agent was killed between
// creating a new revision's container and starting it, and the revision was reverted
// meanwhile. The container, never started, was neither running nor exited: never stopped,
// never removed, left on the engine for good and unknown to the API.
TEST_CASE("a copy created but never started, of a revision no longer desired, is removed") {
  World w;
  w.desired.daemons = {simple("metrics", 1)};
  w.settle();
  w.desired.daemons = {simple("metrics", 2)};
  w.apply(w.step());  // r2 created; the agent dies before it starts it
  const std::string r2 = w.daemonContainer(0);
  REQUIRE(w.find(r2));
  REQUIRE(w.find(r2)->neverStarted());
  w.desired.daemons = {simple("metrics", 1)};
  w.settle();
  CHECK_FALSE(w.find(r2));
  CHECK(w.running(Kind::Daemon, "metrics").size() == 1);
  CHECK(w.observed.containers.size() == 1);
}

// Found by chaos campaign 7 (seed 605006206473): dockerd was SIGKILLed while a task's new
// container was being started; back up, the engine refused every start of it ("id already
// in use": containerd kept the task of the dead start) and the task never converged. One
// that never ran and whose start failed three times is removed, and created anew.
TEST_CASE("a container whose start keeps failing before it ever ran is removed and created anew") {
  World w;
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.apply(w.step());  // created, not started
  const std::string name = w.taskContainer("web-1");
  REQUIRE(w.find(name));
  REQUIRE(w.find(name)->neverStarted());
  Backoff failed;
  failed.reason = "start container 3dde: id already in use (HTTP 500)";
  failed.retryAt = w.now - 1s;
  failed.failures = 2;
  w.memory.createFailures[name] = failed;
  Plan p = w.plan();
  CHECK(count(p, Action::Type::Start, Kind::Task, "web-1") == 1);  // tried again
  CHECK(count(p, Action::Type::Remove, Kind::Task, "web-1") == 0);
  failed.failures = 3;
  w.memory.createFailures[name] = failed;
  p = w.plan();
  CHECK(count(p, Action::Type::Start, Kind::Task, "web-1") == 0);
  CHECK(count(p, Action::Type::Remove, Kind::Task, "web-1") == 1);
  w.apply(p);
  CHECK_FALSE(w.find(name));
  w.memory = p.memory;  // remembered as a failure still (its backoff), but this one gets its own tries
  w.now += 1min;
  w.apply(w.step());  // made anew
  REQUIRE(w.find(name));
  p = w.plan();
  CHECK(count(p, Action::Type::Start, Kind::Task, "web-1") == 1);
  CHECK(count(p, Action::Type::Remove, Kind::Task, "web-1") == 0);
}

TEST_CASE("a task created but never started is removed when it changes or goes") {
  World w;
  w.desired.tasks = {{"web-1", simple("web", 1)}, {"web-2", simple("web", 1)}};
  w.apply(w.step());  // created, not started
  REQUIRE(w.observed.containers.size() == 2);
  w.desired.tasks = {{"web-1", simple("web", 2)}};  // web-1 changed, web-2 gone
  w.settle();
  REQUIRE(w.observed.containers.size() == 1);
  CHECK(w.observed.containers[0].revision == 2);
  CHECK(w.observed.containers[0].running());
}

// Found by the chaos campaign (seeds 925475689485, 150689723297): a task's start failed
// while the engine was down and was planned again; the engine came back and the start went
// through before the agent had listed again, while the critical daemons that had died with
// the engine were still "healthy" in its stale view (P2).
TEST_CASE("slot gate (P2): no application starts on a view the engine has not confirmed since an outage") {
  World w;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.desired.tasks = {{"web-1", simple("web", 1)}};
  w.settle();
  REQUIRE(w.running(Kind::Task).size() == 1);
  w.exit(w.taskContainer("web-1"), 137);  // killed
  w.apply(w.step());                       // seen: replaced after its backoff
  w.now += 5s;
  w.observedStale = true;  // the engine went away, and has not been listed since it came back
  w.settle();
  CHECK(w.running(Kind::Task).empty());
  CHECK(count(w.plan(), Type::Start, Kind::Task) == 0);
  CHECK(count(w.plan(), Type::Create, Kind::Task) == 0);
  CHECK(taskStatus(w.plan(), "web-1")->status != Status::Running);
  w.observedStale = false;  // listed again: the daemon really runs
  w.settle();
  CHECK(w.running(Kind::Task).size() == 1);
}

// Found by the chaos campaign (seed 882158501961): mon rolled from r1 to r2, and r3
// arrived while r2's start was under way. r2's start landed and r3 was started beside it
// before r2 had stopped: r1, r2 and r3 ran at once (P1 allows old and new only).
TEST_CASE("one copy (P1): the newest starts only once no copy but its stand-in is left") {
  World w;
  w.desired.daemons = {simple("metrics", 1, 64, true)};
  w.settle();
  w.desired.daemons = {simple("metrics", 2, 64, true)};
  w.apply(w.step());  // r2 created
  Plan starting = w.step();
  REQUIRE(count(starting, Type::Start, Kind::Daemon) == 1);
  const std::string r2 = starting.actions[0].containerId;
  w.desired.daemons = {simple("metrics", 3, 64, true)};
  w.planWhileUnderWay(starting, r2);  // r3 planned while r2's start is under way
  for (int round = 0; round < 20; ++round) {
    Plan next = w.step();
    if (next.actions.empty()) break;
    if (count(next, Type::Start, Kind::Daemon, "metrics") > 0) CHECK(w.running(Kind::Daemon, "metrics").size() <= 1);
    w.apply(next);
  }
  REQUIRE(w.running(Kind::Daemon, "metrics").size() == 1);
  CHECK(w.running(Kind::Daemon, "metrics")[0]->revision == 3);
}

// Found by the chaos campaign (seed 397328385968): prep (an init container, then main) rolled
// from r1 to r2, and r3 arrived while r2's init start was under way. Once it landed, r2 was
// "serving" (a running container, none unhealthy) although its main had never started, so
// it became the stand-in and r1, the only copy that served, was stopped as an extra: prep
// was down, and a task started meanwhile (P1's overlap and P2's gate both rely on it).
TEST_CASE("rolling update: a copy whose containers have not all started never stands in") {
  auto prep = [](int revision) {
    return def(fmt::format(R"({{"family":"prep","revision":{},"containerDefinitions":[)"
                           R"({{"name":"init","image":"i","memory":8,"essential":false}},)"
                           R"({{"name":"main","image":"i","memory":8,"dependsOn":[{{"containerName":"init","condition":"SUCCESS"}}]}}]}})",
                           revision));
  };
  auto mainsRunning = [](const World& w) {
    int n = 0;
    for (const auto* c : w.running(Kind::Daemon, "prep")) n += c->container == "main";
    return n;
  };
  auto finishInits = [](World& w, int revision) {
    for (auto& c : w.observed.containers) {
      if (c.container == "init" && c.running() && c.revision == revision) w.exit(c.id, 0);
    }
  };
  World w;
  w.desired.daemons = {prep(1)};
  for (int round = 0; round < 10; ++round) {
    w.settle();
    finishInits(w, 1);
  }
  REQUIRE(mainsRunning(w) == 1);
  w.desired.daemons = {prep(2)};
  w.apply(w.step());  // r2's containers created
  Plan starting = w.step();
  REQUIRE(count(starting, Type::Start, Kind::Daemon) == 1);  // r2's init
  const std::string r2init = starting.actions[0].containerId;
  w.desired.daemons = {prep(3)};
  w.planWhileUnderWay(starting, r2init);  // r3 planned while r2's init start is under way
  for (int round = 0; round < 30; ++round) {
    Plan next = w.step();
    w.apply(next);
    CHECK(mainsRunning(w) >= 1);  // prep never goes down during its rollout
    finishInits(w, 3);
    if (next.actions.empty()) break;
  }
  REQUIRE(mainsRunning(w) == 1);
  for (const auto* c : w.running(Kind::Daemon, "prep")) CHECK(c->revision == 3);
}
