#pragma once
// What a task needs from the host before any of its containers exists (DESIGN 3.3): its
// secrets read from the local provider, its log drivers present (or mapped by the agent
// config's logDrivers), its Docker volumes there. Checked for the whole task at every
// create, so a task that cannot start creates nothing and is reported STOPPED instead.
// I/O at the edge, beside the executor; the reconciler never sees a secret.
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/Logger.h"
#include "agent/SecretDirectory.h"
#include "agent/core/Model.h"
#include "config/TaskDefinition.h"
#include "config/TaskPolicy.h"
#include "runtime/Runtime.h"

namespace daemonlet::agent {

class TaskPreparation {
 public:
  TaskPreparation(runtime::Runtime& runtime, Logger& log, std::string instanceId);

  void useSecretsDirectory(std::string directory) { secrets_ = SecretDirectory(std::move(directory)); }
  // {awslogs: journald}: a driver this host lacks, replaced by one it has.
  void mapLogDrivers(std::map<std::string, std::string> map) { logDriverMap_ = std::move(map); }
  // taskPolicy as the agent enforces it (config::taskPolicyOf); app tasks only.
  void usePolicy(config::TaskPolicy policy) { policy_ = std::move(policy); }

  // The reconciler checked `def` against taskPolicy as written; this checks it again on
  // the host, symbolic links followed, just before a container is created. The task's
  // stopped reason when it is refused there; empty when allowed (and for daemons).
  std::string refusedOnHost(Kind kind, const config::TaskDefinition& def) const;

  // `spec` (built for `container` of `def`) with its secrets and log driver filled in, once
  // every container's secrets resolve, every log driver exists and every volume is there.
  // The error is the task's stopped reason; it holds no secret value.
  asio::awaitable<runtime::Result<runtime::ContainerSpec>> prepare(Kind kind, config::TaskDefinition def, std::string taskId,
                                                                    std::string container, runtime::ContainerSpec spec);

  // Removes the task-scoped volumes of one copy (a task run, a daemon revision) once its
  // containers are gone. Shared volumes are never removed. Keeps them all when
  // `createUnderWay()` says a create for the copy began (it uses them); once it has begun
  // removing, it removes them all, and a create of the copy waits for it.
  asio::awaitable<void> removeVolumes(Kind kind, std::string owner, std::string hash, std::function<bool()> createUnderWay);
  // Removes task-scoped volumes of this instance whose copy `hasContainers` says is gone:
  // what a crash between removing the containers and the volume left behind.
  asio::awaitable<void> sweepVolumes(std::function<bool(Kind, const std::string& owner, const std::string& hash)> hasContainers);

  // `message` with every secret value this agent resolved replaced: engine errors may
  // quote what they were given.
  std::string redact(std::string message) const;

 private:
  asio::awaitable<runtime::Status> ensureVolumes(Kind kind, const config::TaskDefinition& def, const std::string& taskId);
  asio::awaitable<runtime::Status> checkLogDriver(const std::string& container, const std::string& driver);
  // The driver a container's logConfiguration.logDriver becomes on this host.
  std::string mappedDriver(const std::string& driver) const;
  runtime::LabelSelector copySelector(Kind kind, const std::string& owner, const std::string& hash) const;

  runtime::Runtime& runtime_;
  Logger& log_;
  std::string instanceId_;
  SecretDirectory secrets_{"/etc/daemonlet/secrets"};
  config::TaskPolicy policy_;
  std::map<std::string, std::string> logDriverMap_;
  std::optional<std::vector<std::string>> engineLogDrivers_;
  std::set<std::string> warned_;
  std::set<std::string> secretValues_;
};

}  // namespace daemonlet::agent
