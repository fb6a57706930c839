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

// Not in the public contract: the labels every container of a copy carries.
runtime::Labels copyLabels(Kind kind, const config::TaskDefinition& def, const std::string& taskId, const std::string& container,
                           const std::string& instanceId) {
  const Resources reservation = config::reservationOf(def);
  runtime::Labels labels = {{label::kManaged, "true"},
                            {label::kKind, toString(kind)},
                            {label::kFamily, def.family},
                            {label::kRevision, std::to_string(def.revision)},
                            {label::kHash, def.hash},
                            {label::kContainer, container},
                            {label::kInstance, instanceId},
                            {label::kCpu, std::to_string(reservation.cpu)},
                            {label::kMemory, std::to_string(reservation.memory)}};
  if (kind == Kind::Task) labels[label::kTaskId] = taskId;
  const auto ports = hostPortsOf(def);
  if (!ports.empty()) labels[label::kHostPorts] = fmt::format("{}", fmt::join(ports, ","));
  return labels;
}

}  // namespace

std::string groupName(Kind kind, const config::TaskDefinition& def, const std::string& taskId, const std::string& instanceId) {
  return fmt::format("{}-{}", readable(kind, def, taskId), suffix(kind, def, taskId, "group", instanceId));
}

std::vector<std::string> hostPortsOf(const config::TaskDefinition& def) {
  std::set<std::string> out;
  for (const auto& c : def.containers) {
    for (const auto& p : c.portMappings) {
      int port = p.hostPort.value_or(0);
      if (def.networkMode == config::NetworkMode::Host && port == 0) port = p.containerPort;
      if (def.networkMode == config::NetworkMode::None || port <= 0) continue;
      out.insert(fmt::format("{}/{}", port, p.protocol));
    }
  }
  return {out.begin(), out.end()};
}

runtime::ContainerSpec buildNetworkHolderSpec(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                                              const std::string& instanceId, const std::string& image, const std::string& network) {
  runtime::ContainerSpec s;
  s.name = containerName(kind, def, taskId, kNetworkHolder, instanceId);
  s.image = image;
  s.labels = copyLabels(kind, def, taskId, kNetworkHolder, instanceId);
  s.networkMode = network;
  // Ports are published by whoever owns the namespace (the engine refuses them on a
  // container:<id> member).
  for (const auto& c : def.containers) {
    for (const auto& p : c.portMappings) {
      if (p.hostPort && *p.hostPort > 0) s.ports.push_back({p.containerPort, *p.hostPort, p.protocol});
    }
  }
  s.readOnlyRootfs = true;
  s.capDrop = {"ALL"};
  s.stopTimeoutSeconds = 2;  // it exits at once on SIGTERM
  return s;
}

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

  s.labels = copyLabels(kind, def, taskId, c.name, instanceId);

  s.user = c.user;
  s.workingDir = c.workingDirectory;
  // awsvpc: one namespace for the whole copy, held by its network holder, so that its
  // containers reach each other on localhost (DESIGN 3.3).
  s.networkMode = def.networkMode == config::NetworkMode::Awsvpc ? "container:" + containerName(kind, def, taskId, kNetworkHolder, instanceId)
                                                                  : toString(def.networkMode);
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
  if (c.logConfiguration) {
    s.log = runtime::LogSpec{c.logConfiguration->logDriver, c.logConfiguration->options};
    // awslogs-stream-prefix is the ECS agent's option, not Docker's (which refuses it): ECS
    // names the stream prefix/container/task, and so do we.
    auto prefix = s.log->options.find("awslogs-stream-prefix");
    if (s.log->driver == "awslogs" && prefix != s.log->options.end()) {
      s.log->options["awslogs-stream"] = fmt::format("{}/{}/{}", prefix->second, c.name, kind == Kind::Daemon ? def.family : taskId);
      s.log->options.erase(prefix);
    }
  }
  if (c.healthCheck) {
    s.healthCheck = runtime::HealthCheckSpec{c.healthCheck->command,
                                             std::chrono::seconds(c.healthCheck->intervalSeconds),
                                             std::chrono::seconds(c.healthCheck->timeoutSeconds),
                                             std::chrono::seconds(c.healthCheck->startPeriodSeconds),
                                             c.healthCheck->retries};
  }

  // P3: the copy's own limits are on its parent cgroup (TaskCgroup.h); a container's own
  // memory is its hard limit inside it, and its cpu units are shares inside it.
  if (c.memory) s.memoryBytes = *c.memory * kMiB;
  if (c.memoryReservation) s.memoryReservationBytes = *c.memoryReservation * kMiB;
  const std::int64_t shares = c.cpu.value_or(0);
  if (shares > 0) s.cpuShares = std::max(shares, kMinCpuShares);
  s.stopTimeoutSeconds = c.stopTimeoutSeconds;
  return s;
}

}  // namespace daemonlet::agent
