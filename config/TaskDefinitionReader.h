#pragma once
// Internal to config/: reads a task definition out of an already parsed document, so that
// a definition embedded in a desired-state response gets the same checks as a file.
#include <optional>
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/FieldReader.h"
#include "config/TaskDefinition.h"

namespace daemonlet::config {

// Returns a definition only when it has no errors. `prefix` is the field path of `node`.
std::optional<TaskDefinition> readTaskDefinition(const YAML::Node& node, FieldReader& reader,
                                                 const std::string& prefix);

// `restart: always | on-failure | never` of a task (a task file's top level, or a task
// entry of a desired-state document); always when absent.
TaskRestart readTaskRestart(const YAML::Node& node, FieldReader& reader, const std::string& field);

}  // namespace daemonlet::config
