#pragma once
// Turns one container of a task definition into what the runtime creates: the names and
// labels of DESIGN 3.6, the limits of P3, and nothing the definition did not ask for.
#include <string>
#include <vector>

#include "agent/Model.h"
#include "config/TaskDefinition.h"
#include "runtime/Container.h"

namespace daemonlet::agent {

// daemonlet-daemon-<family>-<revision>-<hash 8>-<container> | daemonlet-task-<taskId>-<container>
std::string containerName(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                          const std::string& container);

// Docker volume name of a task-scoped volume; a daemon revision gets its own.
std::string volumeName(Kind kind, const config::TaskDefinition& def, const std::string& taskId,
                       const config::Volume& volume);

// `environmentFromFiles` is what the definition's environmentFiles held, read by the caller
// ("NAME=value" lines); the definition's own environment wins over it.
runtime::ContainerSpec buildContainerSpec(Kind kind, const config::TaskDefinition& def,
                                          const std::string& taskId, const config::ContainerDefinition& container,
                                          const std::string& instanceId,
                                          const std::vector<std::string>& environmentFromFiles = {});

}  // namespace daemonlet::agent
