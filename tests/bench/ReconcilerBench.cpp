// reconcile() on a big host: 20 daemons and 1,000 tasks, everything running (the steady
// state the agent re-plans every second and on every event). Target: under 1 ms a plan.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "agent/core/ContainerSpecBuilder.h"
#include "agent/core/Reconciler.h"
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

}  // namespace

BENCHMARK(BM_ReconcileSteadyState)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReconcileBoot)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
