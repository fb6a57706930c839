// reconcile() on a big host: 20 daemons and 1,000 tasks, everything running (the steady
// state the agent re-plans on every event). Target: under 1 ms a plan. Beside it, the
// rest of what Agent::tick does per event (issue 15): the copy of the observed state, the
// task records, the status report, and the state file written when a record changed.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <unistd.h>

#include "agent/core/ContainerSpecBuilder.h"
#include "agent/core/Reconciler.h"
#include "agent/api/StatusDocuments.h"
#include "agent/StateStore.h"
#include "runtime/JsonText.h"
#include "config/TaskDefinitionParser.h"

using namespace daemonlet;
using namespace daemonlet::agent;

namespace {

config::TaskDefinition definition(const std::string& family, int memory) {
  auto p = config::parseTaskDefinition(
      fmt::format(R"({{"family":"{}","revision":1,"containerDefinitions":[{{"name":"main","image":"i","memory":{},"cpu":16,
                  "healthCheck":{{"command":["CMD","true"]}}}}]}})", family, memory), "bench");
  return *p.value;
}

struct Host {
  config::DesiredState desired;
  ObservedState observed;

  Host(int daemons, int tasks) {
    for (int i = 0; i < daemons; ++i) desired.daemons.push_back(definition(fmt::format("daemon-{}", i), 32));
    for (int i = 0; i < tasks; ++i) desired.tasks.push_back({fmt::format("task-{:04}", i), definition(fmt::format("app-{}", i % 50), 16)});
    int id = 0;
    auto add = [&](Kind kind, const config::TaskDefinition& def, const std::string& taskId) {
      auto spec = buildContainerSpec(kind, def, taskId, def.containers[0], "bench");
      runtime::ContainerInfo info;
      info.id = fmt::format("{:064}", ++id);
      info.name = spec.name;
      info.labels = spec.labels;
      info.state = runtime::ContainerState::Running;
      info.health = runtime::Health::Healthy;
      observed.containers.push_back(*observe(info));
    };
    for (const auto& d : desired.daemons) add(Kind::Daemon, d, "");
    for (const auto& t : desired.tasks) add(Kind::Task, t.definition, t.id);
  }
};

void BM_ReconcileSteadyState(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  Memory memory;
  memory.gateOpenedAt = std::chrono::steady_clock::now();
  for (auto _ : state) {
    Inputs in(host.desired, host.observed);
    in.capacity = {1 << 20, 1 << 22};
    in.instanceId = "bench";
    in.phase = Phase::Active;
    in.memory = memory;
    in.now = std::chrono::steady_clock::now();
    Plan plan = reconcile(in);
    benchmark::DoNotOptimize(plan);
    if (!plan.actions.empty()) state.SkipWithError("steady state should plan nothing");
  }
  state.SetLabel("20 daemons");
}

// A boot: nothing runs yet, every daemon to create.
void BM_ReconcileBoot(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  ObservedState empty;
  for (auto _ : state) {
    Inputs in(host.desired, empty);
    in.capacity = {1 << 20, 1 << 22};
    in.instanceId = "bench";
    in.now = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(reconcile(in));
  }
}

Inputs steadyInputs(const Host& host, const ObservedState& observed, const Memory& memory) {
  Inputs in(host.desired, observed);
  in.capacity = {1 << 20, 1 << 22};
  in.instanceId = "bench";
  in.phase = Phase::Active;
  in.memory = memory;
  in.now = std::chrono::steady_clock::now();
  return in;
}

Memory gateOpen() {
  Memory memory;
  memory.gateOpenedAt = std::chrono::steady_clock::now();
  return memory;
}

// Agent::tick for one event that changes no task's status (most events: a health probe
// result, a resync, a source poll): copy the observed state, plan, and compare the plan
// with the last one, which says the report and the records need not be rendered.
void BM_EventCost(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  const Memory memory = gateOpen();
  const Plan last = reconcile(steadyInputs(host, host.observed, memory));
  for (auto _ : state) {
    const ObservedState observed = host.observed;
    Plan plan = reconcile(steadyInputs(host, observed, memory));
    if (!sameStatusReport(plan, last)) state.SkipWithError("the steady state changed its report");
  }
}

// An event that changes a task's status adds: the changed task records found and kept
// for the journal. The status report is rendered when the control endpoint sends it, at
// most once per report interval (BM_StatusReport), and the journal appended and fsynced
// at most once a second (BM_RecordsAppend), not per event.
void BM_EventCostChanged(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  const Memory memory = gateOpen();
  Plan last = reconcile(steadyInputs(host, host.observed, memory));
  last.tasks.front().status = Status::Stopped;
  auto records = taskRecordsOf(last.tasks);
  const std::string changedId = last.tasks.front().id;
  for (auto _ : state) {
    const ObservedState observed = host.observed;
    Plan plan = reconcile(steadyInputs(host, observed, memory));
    if (sameStatusReport(plan, last)) state.SkipWithError("the change went unseen");
    const auto changes = applyTaskRecords(records, plan.tasks);
    if (changes.size() != 1) state.SkipWithError("one record should have changed");
    records[changedId].status = "STOPPED";  // changed again by the next event
  }
}

void BM_ObservedCopy(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  for (auto _ : state) {
    ObservedState copy = host.observed;
    benchmark::DoNotOptimize(copy);
  }
}

void BM_StatusReport(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  const Plan plan = reconcile(steadyInputs(host, host.observed, gateOpen()));
  for (auto _ : state) benchmark::DoNotOptimize(jsonText(statusReportDocument(plan, 1)));
}

void BM_TaskRecords(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  const Plan plan = reconcile(steadyInputs(host, host.observed, gateOpen()));
  for (auto _ : state) benchmark::DoNotOptimize(taskRecordsOf(plan.tasks));
}

// A full snapshot, state.json rewritten and fsynced (in $TMPDIR, default /tmp: the disk
// decides most of it): on a desired-state change, and when the journal outgrows it.
void BM_StateSave(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  const Plan plan = reconcile(steadyInputs(host, host.observed, gateOpen()));
  const char* tmp = std::getenv("TMPDIR");
  const auto dir = std::filesystem::path(tmp ? tmp : "/tmp") / fmt::format("dl-state-bench-{}", ::getpid());
  std::ostringstream discard;
  Logger log(discard);
  StateStore store(dir, log);
  const PersistedState saved{{host.desired, "etag"}, taskRecordsOf(plan.tasks), "bench"};
  for (auto _ : state) {
    if (!store.save(saved)) state.SkipWithError("save failed");
  }
  state.counters["bytes"] = static_cast<double>(std::filesystem::file_size(store.path()));
  std::filesystem::remove_all(dir);
}

// The coalesced save of changed records: one line each appended to the journal, fsynced.
void BM_RecordsAppend(benchmark::State& state) {
  Host host(20, static_cast<int>(state.range(0)));
  const Plan plan = reconcile(steadyInputs(host, host.observed, gateOpen()));
  const char* tmp = std::getenv("TMPDIR");
  const auto dir = std::filesystem::path(tmp ? tmp : "/tmp") / fmt::format("dl-journal-bench-{}", ::getpid());
  std::ostringstream discard;
  Logger log(discard);
  StateStore store(dir, log);
  if (!store.save({{host.desired, "etag"}, taskRecordsOf(plan.tasks), "bench"})) state.SkipWithError("save failed");
  const TaskRecordChanges changes{{plan.tasks.front().id, TaskRecord{"STOPPED", "Essential container in task exited", {{"main", 1}}}}};
  for (auto _ : state) {
    if (!store.appendRecords(changes)) state.SkipWithError("append failed");
  }
  state.counters["bytes_per_append"] = static_cast<double>(store.journalBytes()) / static_cast<double>(state.iterations());
  std::filesystem::remove_all(dir);
}

}  // namespace

BENCHMARK(BM_ReconcileSteadyState)->Arg(20)->Arg(100)->Arg(250)->Arg(500)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReconcileBoot)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EventCost)->Arg(20)->Arg(100)->Arg(250)->Arg(500)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EventCostChanged)->Arg(20)->Arg(100)->Arg(250)->Arg(500)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ObservedCopy)->Arg(20)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TaskRecords)->Arg(20)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StatusReport)->Arg(20)->Arg(100)->Arg(250)->Arg(500)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StateSave)->Arg(20)->Arg(100)->Arg(250)->Arg(500)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RecordsAppend)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
