#include "agent/api/StatusDocuments.h"

#include <algorithm>
#include <ctime>
#include <map>

#include <fmt/format.h>

namespace daemonlet::agent {
namespace {

using nlohmann::json;

json resources(const Resources& r) { return {{"cpu", r.cpu}, {"memory", r.memory}}; }

std::string rfc3339(WallTime t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

json containers(const std::vector<ContainerStatus>& list) {
  json out = json::array();
  for (const auto& c : list) {
    out.push_back({{"name", c.name}, {"id", c.id}, {"status", c.status}, {"exitCode", c.exitCode ? json(*c.exitCode) : json(nullptr)}});
  }
  return out;
}

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

// Prometheus label values escape backslash, quote and newline.
std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string healthName(const DaemonStatus& d) { return d.health == runtime::Health::None ? "UNKNOWN" : upper(runtime::toString(d.health)); }

json nullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json orphansDocument(const std::vector<OrphanContainer>& orphans) {
  json out = json::array();
  for (const auto& o : orphans) {
    out.push_back({{"id", o.id}, {"name", o.name}, {"instance", o.instance}, {"kind", toString(o.kind)}, {"owner", o.owner}, {"running", o.running}});
  }
  return out;
}

}  // namespace

void AgentMetrics::observeReconcile(double seconds) {
  ++reconciles;
  reconcileSecondsSum += seconds;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++reconcileBuckets[i];
  }
}

json metadataDocument(const InstanceInfo& info, const Plan& plan) {
  return {{"cluster", info.cluster},
          {"instanceId", info.instanceId},
          {"version", info.version},
          {"phase", toString(plan.phase)},
          {"slotGateOpen", plan.memory.gateOpenedAt.has_value()},
          {"slotGateReason", plan.memory.gateReason},
          {"capacity", resources(info.total)},
          {"reserved", resources(info.reserved)},
          {"daemonReserved", resources(plan.daemonReserved)},
          {"available", resources(plan.available)},
          {"runtime", info.runtime},
          {"orphans", orphansDocument(info.orphans)},
          {"sourceProblems", info.sourceProblems}};
}

json daemonsDocument(const Plan& plan) {
  json out = json::array();
  for (const auto& d : plan.daemons) {
    out.push_back({{"family", d.family},
                   {"revision", d.revision},
                   {"status", toString(d.status)},
                   {"health", healthName(d)},
                   {"critical", d.critical},
                   {"containers", containers(d.containers)},
                   {"startedAt", d.startedAt ? json(rfc3339(*d.startedAt)) : json(nullptr)},
                   {"restarts", d.restarts},
                   {"lastError", nullIfEmpty(d.lastError)}});
  }
  return out;
}

json taskDocument(const TaskStatus& t) {
  return {{"id", t.id},
          {"family", t.family},
          {"revision", t.revision},
          {"status", toString(t.status)},
          {"stoppedReason", nullIfEmpty(t.stoppedReason)},
          {"restarts", t.restarts},
          {"address", nullIfEmpty(t.address)},
          {"policyProblem", nullIfEmpty(t.policyProblem)},
          {"containers", containers(t.containers)}};
}

json statusReportDocument(const Plan& plan, std::int64_t generation) {
  json daemons = json::array();
  for (const auto& d : plan.daemons) {
    daemons.push_back({{"family", d.family},
                       {"revision", d.revision},
                       {"status", toString(d.status)},
                       {"health", healthName(d)},
                       {"restarts", d.restarts},
                       {"lastError", nullIfEmpty(d.lastError)}});
  }
  json tasks = json::array();
  for (const auto& t : plan.tasks) {
    json exitCodes = json::object();
    for (const auto& c : t.containers) {
      if (c.exitCode) exitCodes[c.name] = *c.exitCode;
    }
    tasks.push_back({{"id", t.id}, {"status", toString(t.status)}, {"stoppedReason", nullIfEmpty(t.stoppedReason)}, {"exitCodes", exitCodes}});
  }
  return {{"generation", generation},
          {"phase", toString(plan.phase)},
          {"capacity", resources(plan.capacity)},
          {"daemonReserved", resources(plan.daemonReserved)},
          {"available", resources(plan.available)},
          {"daemons", std::move(daemons)},
          {"tasks", std::move(tasks)}};
}

bool sameStatusReport(const Plan& a, const Plan& b) {
  auto exitCodes = [](const std::vector<ContainerStatus>& x, const std::vector<ContainerStatus>& y) {
    return std::equal(x.begin(), x.end(), y.begin(), y.end(),
                      [](const ContainerStatus& l, const ContainerStatus& r) { return l.name == r.name && l.exitCode == r.exitCode; });
  };
  auto sameDaemon = [](const DaemonStatus& x, const DaemonStatus& y) {
    return x.family == y.family && x.revision == y.revision && x.status == y.status && x.health == y.health &&
           x.restarts == y.restarts && x.lastError == y.lastError;
  };
  auto sameTask = [&](const TaskStatus& x, const TaskStatus& y) {
    return x.id == y.id && x.status == y.status && x.stoppedReason == y.stoppedReason && exitCodes(x.containers, y.containers);
  };
  return a.phase == b.phase && a.capacity == b.capacity && a.daemonReserved == b.daemonReserved && a.available == b.available &&
         std::equal(a.daemons.begin(), a.daemons.end(), b.daemons.begin(), b.daemons.end(), sameDaemon) &&
         std::equal(a.tasks.begin(), a.tasks.end(), b.tasks.begin(), b.tasks.end(), sameTask);
}

json tasksDocument(const Plan& plan) {
  json out = json::array();
  for (const auto& t : plan.tasks) out.push_back(taskDocument(t));
  return out;
}

std::string metricsText(const InstanceInfo& info, const Plan& plan, const AgentMetrics& m) {
  std::string out;
  auto gauge = [&](const char* name, const char* help) { out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name); };
  gauge("daemonlet_phase", "The instance phase: 1 for the current one.");
  for (Phase p : {Phase::Starting, Phase::DaemonsPending, Phase::Active, Phase::Draining, Phase::Drained, Phase::StoppingDaemons, Phase::Stopped})
    out += fmt::format("daemonlet_phase{{phase=\"{}\"}} {}\n", toString(p), p == plan.phase ? 1 : 0);
  gauge("daemonlet_slot_gate_open", "1 once every critical daemon was up (or the gate timed out).");
  out += fmt::format("daemonlet_slot_gate_open {}\n", plan.memory.gateOpenedAt ? 1 : 0);

  std::map<std::string, int> daemons, tasks;
  for (Status s : {Status::Pending, Status::Activating, Status::Running, Status::Deactivating, Status::Stopping, Status::Stopped}) {
    daemons[toString(s)] = 0;
    tasks[toString(s)] = 0;
  }
  for (const auto& d : plan.daemons) ++daemons[toString(d.status)];
  for (const auto& t : plan.tasks) ++tasks[toString(t.status)];
  gauge("daemonlet_daemons", "Managed daemons by status.");
  for (const auto& [s, n] : daemons) out += fmt::format("daemonlet_daemons{{status=\"{}\"}} {}\n", s, n);
  gauge("daemonlet_tasks", "Application tasks by status.");
  for (const auto& [s, n] : tasks) out += fmt::format("daemonlet_tasks{{status=\"{}\"}} {}\n", s, n);

  gauge("daemonlet_cpu_units", "CPU units (1024 = 1 vCPU): capacity, instance reserve, daemon reservations, available to tasks.");
  gauge("daemonlet_memory_mib", "Memory in MiB: capacity, instance reserve, daemon reservations, available to tasks.");
  const std::pair<const char*, Resources> rows[] = {{"capacity", info.total}, {"reserved", info.reserved}, {"daemons", plan.daemonReserved}, {"available", plan.available}};
  for (const auto& [kind, r] : rows) out += fmt::format("daemonlet_cpu_units{{kind=\"{}\"}} {}\n", kind, r.cpu);
  for (const auto& [kind, r] : rows) out += fmt::format("daemonlet_memory_mib{{kind=\"{}\"}} {}\n", kind, r.memory);

  out += "# HELP daemonlet_daemon_restarts_total Restarts of a daemon since the agent started.\n# TYPE daemonlet_daemon_restarts_total counter\n";
  for (const auto& d : plan.daemons) out += fmt::format("daemonlet_daemon_restarts_total{{family=\"{}\"}} {}\n", escape(d.family), d.restarts);
  out += "# HELP daemonlet_rollouts_total Daemon revisions rolled out since the agent started.\n# TYPE daemonlet_rollouts_total counter\n";
  out += fmt::format("daemonlet_rollouts_total {}\n", m.rollouts);
  out += "# HELP daemonlet_control_endpoint_errors_total Failed requests to the control endpoint.\n# TYPE daemonlet_control_endpoint_errors_total counter\n";
  out += fmt::format("daemonlet_control_endpoint_errors_total {}\n", m.controlEndpointErrors);
  gauge("daemonlet_orphan_containers", "Managed containers of other instance ids on this engine: reported, never adopted or removed.");
  out += fmt::format("daemonlet_orphan_containers {}\n", info.orphans.size());
  gauge("daemonlet_source_problems", "Problems for which the source keeps the last good desired state (a directory gone or unlistable).");
  out += fmt::format("daemonlet_source_problems {}\n", info.sourceProblems.size());
  out += "# HELP daemonlet_internal_errors_total Exceptions caught at a coroutine or handler boundary (bugs; see the log).\n# TYPE daemonlet_internal_errors_total counter\n";
  out += fmt::format("daemonlet_internal_errors_total {}\n", m.internalErrors);
  out += "# HELP daemonlet_reconcile_duration_seconds Time to compute one plan.\n# TYPE daemonlet_reconcile_duration_seconds histogram\n";
  for (std::size_t i = 0; i < AgentMetrics::kBuckets.size(); ++i)
    out += fmt::format("daemonlet_reconcile_duration_seconds_bucket{{le=\"{}\"}} {}\n", AgentMetrics::kBuckets[i], m.reconcileBuckets[i]);
  out += fmt::format("daemonlet_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", m.reconciles);
  out += fmt::format("daemonlet_reconcile_duration_seconds_sum {}\n", m.reconcileSecondsSum);
  out += fmt::format("daemonlet_reconcile_duration_seconds_count {}\n", m.reconciles);
  return out;
}

}  // namespace daemonlet::agent
