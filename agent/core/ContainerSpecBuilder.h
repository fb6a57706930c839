#pragma once
// Turns one container of a task definition into what the runtime creates: the names and
// labels of DESIGN 3.6, the limits of P3, and nothing the definition did not ask for.
#include <string>
#include <vector>

#include "agent/core/Model.h"
#include "config/TaskDefinition.h"
#include "runtime/Container.h"

namespace daemonlet::agent {

// DESIGN 3.6: daemonlet-daemon-<family>-<revision>-<container>-<suffix> and
// daemonlet-task-<taskId>-<container>-<suffix>. The suffix (12 hex digits of SHA-256 over
// instance, kind, owner, container and definition hash) makes names distinct for every
// instance, owner, container and revision, however the readable parts run together.
std::string containerName(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                          const std::string& container, const std::string& instanceId);

// Docker volume name of a task-scoped volume; a daemon revision gets its own.
std::string volumeName(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                       const config::Volume& volume, const std::string& instanceId);

// The readable owner and 12 hex digits, distinct per instance, owner and definition hash:
// names what belongs to one copy as a whole (its parent cgroup).
std::string groupName(Kind kind, const config::TaskDefinition& def, const std::string& taskId, const std::string& instanceId);

// awsvpc (DESIGN 3.3): each copy gets a small container that only holds the network
// namespace its containers share. A dot is not allowed in ECS container names, so this
// one never collides with a definition's.
inline constexpr const char* kNetworkHolder = "awsvpc.pause";

// The host ports a copy publishes, as "8080/tcp": a given hostPort (bridge, awsvpc), or
// every container port under host networking. Two copies never share one (RESOURCE:PORTS).
std::vector<std::string> hostPortsOf(const config::TaskDefinition& def);

// The namespace holder of an awsvpc copy: on `network`, publishing the copy's host ports,
// read-only, with no capabilities.
runtime::ContainerSpec buildNetworkHolderSpec(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                                              const std::string& instanceId, const std::string& image, const std::string& network);

// `environmentFromFiles` is what the definition's environmentFiles held, read by the caller
// ("NAME=value" lines); the definition's own environment wins over it.
runtime::ContainerSpec buildContainerSpec(Kind kind, const config::TaskDefinition& def,
                                          const std::string& taskId, const config::ContainerDefinition& container,
                                          const std::string& instanceId,
                                          const std::vector<std::string>& environmentFromFiles = {});

}  // namespace daemonlet::agent
