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

}  // namespace daemonlet::config
