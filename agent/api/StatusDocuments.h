#pragma once
// The documents of the introspection API (DESIGN 3.7), rendered from the last plan.
// Pure: the same values always give the same text.
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/core/Reconciler.h"

namespace daemonlet::agent {

struct InstanceInfo {
  std::string cluster;
  std::string instanceId;
  std::string version;
  Resources total;     // capacity before instance.reserved
  Resources reserved;  // instance.reserved
  std::string runtime;  // "docker 20.10.24", once connected
  std::vector<OrphanContainer> orphans;
  std::vector<std::string> sourceProblems;  // why the source keeps a last good state
};

// Counters the agent keeps for /metrics.
struct AgentMetrics {
  std::int64_t rollouts = 0;
  std::int64_t controlEndpointErrors = 0;
  std::int64_t internalErrors = 0;  // exceptions caught at a coroutine or handler boundary
  std::int64_t reconciles = 0;
  double reconcileSecondsSum = 0;
  std::vector<std::int64_t> reconcileBuckets = std::vector<std::int64_t>(kBuckets.size(), 0);
  static constexpr std::array<double, 6> kBuckets{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.1};

  void observeReconcile(double seconds);
};

nlohmann::json metadataDocument(const InstanceInfo& info, const Plan& plan);
nlohmann::json daemonsDocument(const Plan& plan);
nlohmann::json taskDocument(const TaskStatus& task);
nlohmann::json tasksDocument(const Plan& plan);
// The status report PUT to the control endpoint (DESIGN 3.5): only what a control plane
// acts on, so that an idle agent's report does not change between heartbeats.
nlohmann::json statusReportDocument(const Plan& plan, std::int64_t generation);
// Whether two plans give the same status report (and so the same task records): the
// agent renders and publishes a report, and saves records, only when this is false,
// since rendering costs milliseconds at 1,000 tasks and comparing microseconds (issue 15).
bool sameStatusReport(const Plan& a, const Plan& b);
std::string metricsText(const InstanceInfo& info, const Plan& plan, const AgentMetrics& metrics);

}  // namespace daemonlet::agent
