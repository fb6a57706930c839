#include "agent/core/ContainerSpecBuilder.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "config/FieldReader.h"
#include "config/Resources.h"
#include "config/Sha256.h"

namespace daemonlet::agent {
namespace {

constexpr std::int64_t kMiB = 1024 * 1024;
constexpr std::int64_t kMinCpuShares = 2;  // the kernel's floor

std::string readable(Kind kind, const config::TaskDefinition& def, const std::string& taskId) {
  return kind == Kind::Daemon ? fmt::format("daemon-{}-{}", def.family, def.revision) : fmt::format("task-{}", taskId);
}

// NUL-separated: no two different tuples hash the same input.
std::string suffix(Kind kind, const config::TaskDefinition& def, const std::string& taskId, const std::string& part,
                   const std::string& instanceId) {
  std::string input = instanceId;
  for (const std::string& field : {std::string(toString(kind)), kind == Kind::Daemon ? def.family : taskId, part, def.hash}) {
    input += '\0';
    input += field;
  }
  return config::sha256Hex(input).substr(0, 12);
}

}  // namespace

std::string containerName(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                          const std::string& container, const std::string& instanceId) {
  return fmt::format("daemonlet-{}-{}-{}", readable(kind, def, taskId), container, suffix(kind, def, taskId, container, instanceId));
}

std::string volumeName(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                       const config::Volume& volume, const std::string& instanceId) {
  if (volume.dockerVolume && volume.dockerVolume->shared) return volume.name;
  return fmt::format("daemonlet-{}-{}-{}", readable(kind, def, taskId), volume.name,
                     suffix(kind, def, taskId, "volume/" + volume.name, instanceId));
}

runtime::ContainerSpec buildContainerSpec(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                                          const config::ContainerDefinition& c, const std::string& instanceId,
                                          const std::vector<std::string>& environmentFromFiles) {
  runtime::ContainerSpec s;
  s.name = containerName(kind, def, taskId, c.name, instanceId);
  s.image = c.image;
  s.command = c.command;
  s.entrypoint = c.entryPoint;

  std::set<std::string> defined;
  for (const auto& e : c.environment) {
    s.env.push_back(e.name + "=" + e.value);
    defined.insert(e.name);
  }
  for (const auto& line : environmentFromFiles) {
    if (!defined.count(line.substr(0, line.find('=')))) s.env.push_back(line);
  }

  const Resources reservation = config::reservationOf(def);
  s.labels = {{label::kManaged, "true"},
              {label::kKind, toString(kind)},
              {label::kFamily, def.family},
              {label::kRevision, std::to_string(def.revision)},
              {label::kHash, def.hash},
              {label::kContainer, c.name},
              {label::kInstance, instanceId},
              {label::kCpu, std::to_string(reservation.cpu)},
              {label::kMemory, std::to_string(reservation.memory)}};
  if (kind == Kind::Task) s.labels[label::kTaskId] = taskId;

  s.user = c.user;
  s.workingDir = c.workingDirectory;
  // TODO(issue 11 awsvpc): a task network namespace on daemonlet0; until then awsvpc tasks
  // run on Docker's bridge, which knows no "awsvpc" network.
  s.networkMode = def.networkMode == config::NetworkMode::Awsvpc ? "bridge" : toString(def.networkMode);
  if (def.pidMode == "host") s.pidMode = "host";
  if (def.networkMode == config::NetworkMode::Bridge) {
    for (const auto& p : c.portMappings) s.ports.push_back({p.containerPort, p.hostPort.value_or(0), p.protocol});
  }
  for (const auto& m : c.mountPoints) {
    const auto vol = std::find_if(def.volumes.begin(), def.volumes.end(), [&](const config::Volume& v) { return v.name == m.sourceVolume; });
    if (vol == def.volumes.end()) continue;  // validation guarantees it exists
    if (vol->hostSourcePath) s.mounts.push_back({runtime::Mount::Type::Bind, *vol->hostSourcePath, m.containerPath, m.readOnly, 0, {}});
    else s.mounts.push_back({runtime::Mount::Type::Volume, volumeName(kind, def, taskId, *vol, instanceId), m.containerPath, m.readOnly, 0, {}});
  }
  for (const auto& t : c.linuxParameters.tmpfs) {
    s.mounts.push_back({runtime::Mount::Type::Tmpfs, "", t.containerPath, false, t.sizeMiB * kMiB, t.mountOptions});
  }
  for (const auto& v : c.volumesFrom) {
    s.volumesFrom.push_back(containerName(kind, def, taskId, v.sourceContainer, instanceId) + (v.readOnly ? ":ro" : ""));
  }
  s.privileged = c.privileged;
  s.readOnlyRootfs = c.readonlyRootFilesystem;
  s.init = c.linuxParameters.initProcessEnabled;
  s.capAdd = c.linuxParameters.capabilitiesAdd;
  s.capDrop = c.linuxParameters.capabilitiesDrop;
  for (const auto& u : c.ulimits) s.ulimits.push_back({u.name, u.softLimit, u.hardLimit});
  if (c.logConfiguration) s.log = runtime::LogSpec{c.logConfiguration->logDriver, c.logConfiguration->options};
  if (c.healthCheck) {
    s.healthCheck = runtime::HealthCheckSpec{c.healthCheck->command,
                                             std::chrono::seconds(c.healthCheck->intervalSeconds),
                                             std::chrono::seconds(c.healthCheck->timeoutSeconds),
                                             std::chrono::seconds(c.healthCheck->startPeriodSeconds),
                                             c.healthCheck->retries};
  }

  // P3: what is reserved is enforced. A container's own memory is its hard limit; without
  // one, the task-level memory caps it. CPU units map to shares one to one; a task-level
  // cpu also becomes a hard cap.
  if (c.memory) s.memoryBytes = *c.memory * kMiB;
  else if (def.memory) s.memoryBytes = *def.memory * kMiB;
  if (c.memoryReservation) s.memoryReservationBytes = *c.memoryReservation * kMiB;
  const std::int64_t shares = c.cpu.value_or(0);
  if (shares > 0) s.cpuShares = std::max(shares, kMinCpuShares);
  if (def.cpu) s.nanoCpus = *def.cpu * 1'000'000'000 / 1024;
  s.stopTimeoutSeconds = c.stopTimeoutSeconds;
  return s;
}

}  // namespace daemonlet::agent
