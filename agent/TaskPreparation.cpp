#include "agent/TaskPreparation.h"

#include <algorithm>

#include <fmt/format.h>

#include "agent/core/ContainerSpecBuilder.h"

namespace daemonlet::agent {
namespace {

using runtime::Error;

// Docker's log options that every driver takes; the rest belong to the driver they were
// written for and would make the engine refuse the container under another one.
bool everyDriverTakes(const std::string& option) { return option == "mode" || option == "max-buffer-size"; }

// Shorter values would blank out ordinary words of a message.
constexpr std::size_t kShortestRedacted = 4;

std::string labelOf(const runtime::Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? std::string() : it->second;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

TaskPreparation::TaskPreparation(runtime::Runtime& runtime, Logger& log, std::string instanceId)
    : runtime_(runtime), log_(log), instanceId_(std::move(instanceId)) {}

std::string TaskPreparation::mappedDriver(const std::string& driver) const {
  auto it = logDriverMap_.find(driver);
  return it == logDriverMap_.end() ? driver : it->second;
}

asio::awaitable<runtime::Result<runtime::ContainerSpec>> TaskPreparation::prepare(Kind kind, config::TaskDefinition def, std::string taskId,
                                                                                   std::string container, runtime::ContainerSpec spec) {
  // Every container's secrets, not only this one's: ECS resolves a task's secrets before
  // it creates any of its containers, and so does this.
  std::vector<std::pair<std::string, std::string>> env, logOptions;
  for (const auto& c : def.containers) {
    const bool mapped = c.logConfiguration && mappedDriver(c.logConfiguration->logDriver) != c.logConfiguration->logDriver;
    std::vector<config::Secret> wanted = c.secrets;
    // Options of a driver mapped away are dropped, so their secrets are not needed.
    if (c.logConfiguration && !mapped) wanted.insert(wanted.end(), c.logConfiguration->secretOptions.begin(), c.logConfiguration->secretOptions.end());
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      auto value = secrets_.resolve(wanted[i].name, wanted[i].valueFrom);
      if (!value) co_return value.error();
      if (value->size() >= kShortestRedacted) secretValues_.insert(value.value());
      if (c.name != container) continue;
      (i < c.secrets.size() ? env : logOptions).emplace_back(wanted[i].name, std::move(value.value()));
    }
  }
  for (const auto& c : def.containers) {
    if (!c.logConfiguration) continue;
    auto present = co_await checkLogDriver(c.name, mappedDriver(c.logConfiguration->logDriver));
    if (!present) co_return present.error();
  }
  if (auto volumes = co_await ensureVolumes(kind, def, taskId); !volumes) co_return volumes.error();

  for (auto& [name, value] : env) {
    const std::string prefix = name + "=";
    spec.env.erase(std::remove_if(spec.env.begin(), spec.env.end(), [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }), spec.env.end());
    spec.env.push_back(prefix + value);
  }
  if (spec.log) {
    const std::string written = spec.log->driver;
    const std::string use = mappedDriver(written);
    if (use != written) {
      std::vector<std::string> dropped;
      for (auto it = spec.log->options.begin(); it != spec.log->options.end();) {
        if (everyDriverTakes(it->first)) { ++it; continue; }
        dropped.push_back(it->first);
        it = spec.log->options.erase(it);
      }
      spec.log->driver = use;
      if (warned_.insert(def.family + "/" + container + "/" + written).second) {
        log_.warn("{} {}: container {}: log driver {} is mapped to {} (logDrivers in the agent config){}", toString(kind),
                  kind == Kind::Daemon ? def.family : taskId, container, written, use,
                  dropped.empty() ? std::string() : "; its options " + join(dropped) + " are dropped");
      }
    } else {
      for (auto& [name, value] : logOptions) spec.log->options[name] = std::move(value);
    }
  }
  co_return spec;
}

asio::awaitable<runtime::Status> TaskPreparation::checkLogDriver(const std::string& container, const std::string& driver) {
  if (!engineLogDrivers_) {
    auto listed = co_await runtime_.logDrivers();
    if (!listed) co_return runtime::Done{};  // unknown: the engine's own answer to create will say
    engineLogDrivers_ = listed.value();
  }
  const auto& have = *engineLogDrivers_;
  if (have.empty() || std::find(have.begin(), have.end(), driver) != have.end()) co_return runtime::Done{};
  const std::string what = driver == "awsfirelens" ? " (awsfirelens is ECS's FireLens log router, which daemonlet does not provide)" : "";
  co_return Error{Error::Code::Unsupported,
                  fmt::format("log driver {} of container {} is not available on this host{}; it has {}. Map it to one of those with "
                              "logDrivers in the agent config, e.g. logDrivers: {{{}: json-file}}",
                              driver, container, what, join(have), driver)};
}

runtime::LabelSelector TaskPreparation::copySelector(Kind kind, const std::string& owner, const std::string& hash) const {
  return {{label::kManaged, "true"},
          {label::kInstance, instanceId_},
          {label::kKind, toString(kind)},
          {kind == Kind::Daemon ? label::kFamily : label::kTaskId, owner},
          {label::kHash, hash}};
}

std::string TaskPreparation::refusedOnHost(Kind kind, const config::TaskDefinition& def) const {
  if (kind != Kind::Task) return {};
  std::vector<std::string> reasons;
  for (const auto& r : config::checkTaskPolicy(policy_, def, config::PathResolution::OnHost)) reasons.push_back(r.format());
  return reasons.empty() ? std::string() : fmt::format("TaskPolicy: {}", fmt::join(reasons, "; "));
}

asio::awaitable<runtime::Status> TaskPreparation::ensureVolumes(Kind kind, const config::TaskDefinition& def, const std::string& taskId) {
  for (const auto& v : def.volumes) {
    if (v.hostSourcePath) continue;  // a bind mount: nothing to create
    // Neither host nor Docker configuration: an empty task-scoped volume (DESIGN 3.3).
    const config::DockerVolumeConfiguration cfg = v.dockerVolume.value_or(config::DockerVolumeConfiguration{});
    const std::string name = volumeName(kind, def, taskId, v, instanceId_);
    if (!cfg.shared) {
      runtime::VolumeSpec spec{name, cfg.driver, cfg.driverOpts, cfg.labels};
      for (const auto& [k, val] : copySelector(kind, kind == Kind::Daemon ? def.family : taskId, def.hash)) spec.labels[k] = val;
      auto created = co_await runtime_.createVolume(spec);
      if (!created) co_return Error{created.error().code, fmt::format("volume {}: {}", v.name, created.error().message)};
      continue;
    }
    auto existing = co_await runtime_.inspectVolume(name);
    if (existing) {
      if (kind == Kind::Task && !config::sharedVolumeAllowed(policy_, name, existing->labels)) {
        co_return Error{Error::Code::PermissionDenied,
                        fmt::format("TaskPolicy: field 'volumes[].dockerVolumeConfiguration': shared volume {} was not created by daemonlet "
                                    "for an application task (label {}=task) and is not in taskPolicy.sharedVolumes", name, config::kSharedByLabel)};
      }
      if (existing->driver != cfg.driver) {
        co_return Error{Error::Code::Conflict, fmt::format("shared volume {} exists with driver {}, but the definition asks for driver {}",
                                                           name, existing->driver, cfg.driver)};
      }
      continue;
    }
    if (existing.error().code != Error::Code::NotFound) co_return Error{existing.error().code, fmt::format("volume {}: {}", name, existing.error().message)};
    if (!cfg.autoprovision) {
      co_return Error{Error::Code::NotFound,
                      fmt::format("shared volume {} does not exist and autoprovision is false: create it first "
                                  "(docker volume create --driver {} {}) or set autoprovision: true", name, cfg.driver, name)};
    }
    runtime::VolumeSpec spec{name, cfg.driver, cfg.driverOpts, cfg.labels};
    spec.labels[config::kSharedByLabel] = toString(kind);  // app tasks may use it again (taskPolicy.sharedVolumes)
    auto created = co_await runtime_.createVolume(spec);
    if (!created) co_return Error{created.error().code, fmt::format("shared volume {}: {}", name, created.error().message)};
    log_.info("{} {}: created shared volume {} (driver {}, autoprovision); it outlives the task", toString(kind),
              kind == Kind::Daemon ? def.family : taskId, name, cfg.driver);
  }
  co_return runtime::Done{};
}

asio::awaitable<void> TaskPreparation::removeVolumes(Kind kind, std::string owner, std::string hash, std::function<bool()> createUnderWay) {
  auto listed = co_await runtime_.listVolumes(copySelector(kind, owner, hash));
  if (!listed) {
    log_.warn("{} {}: listing its task-scoped volumes failed: {}", toString(kind), owner, listed.error().message);
    co_return;
  }
  // Decided once: a removal that has begun takes every volume (a create of the same copy
  // waits for it), so a new copy never gets some volumes fresh and others with old data.
  if (!listed->empty() && createUnderWay()) {
    log_.info("{} {}: task-scoped volumes kept ({} ...): a container of the same copy is being created", toString(kind), owner,
              listed->front().name);
    co_return;
  }
  for (const auto& v : listed.value()) {
    auto removed = co_await runtime_.removeVolume(v.name);
    if (removed) log_.info("{} {}: removed task-scoped volume {}", toString(kind), owner, v.name);
    else log_.warn("{} {}: removing task-scoped volume {} failed: {}", toString(kind), owner, v.name, removed.error().message);
  }
}

asio::awaitable<void> TaskPreparation::sweepVolumes(std::function<bool(Kind, const std::string&, const std::string&)> hasContainers) {
  // Not a braced argument: GCC 12 cannot compile one inside a coroutine.
  runtime::LabelSelector ours{{label::kManaged, "true"}, {label::kInstance, instanceId_}};
  auto listed = co_await runtime_.listVolumes(ours);
  if (!listed) co_return;
  for (const auto& v : listed.value()) {
    const Kind kind = labelOf(v.labels, label::kKind) == "daemon" ? Kind::Daemon : Kind::Task;
    const std::string owner = labelOf(v.labels, kind == Kind::Daemon ? label::kFamily : label::kTaskId);
    if (hasContainers(kind, owner, labelOf(v.labels, label::kHash))) continue;
    auto removed = co_await runtime_.removeVolume(v.name);
    if (removed) log_.info("{} {}: removed task-scoped volume {}, left behind by its containers", toString(kind), owner, v.name);
  }
}

std::string TaskPreparation::redact(std::string message) const {
  for (const auto& value : secretValues_) {
    static const std::string mark = "<redacted>";
    for (auto at = message.find(value); at != std::string::npos; at = message.find(value, at + mark.size())) message.replace(at, value.size(), mark);
  }
  return message;
}

}  // namespace daemonlet::agent
