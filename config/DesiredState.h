#pragma once
// What every source produces (DESIGN 3.4): the daemons and application tasks this
// instance should run.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/Diagnostic.h"
#include "config/TaskDefinition.h"
#include "config/TaskDefinitionParser.h"

namespace daemonlet::config {

enum class InstanceStatus { Active, Draining };

struct ApplicationTask {
  std::string id;
  TaskDefinition definition;
  TaskRestart restart = TaskRestart::Always;
};

struct DesiredState {
  std::int64_t generation = 0;
  InstanceStatus instanceStatus = InstanceStatus::Active;
  std::vector<TaskDefinition> daemons;  // one copy each, keyed by family
  std::vector<ApplicationTask> tasks;   // keyed by id

  const TaskDefinition* daemon(const std::string& family) const;
  const ApplicationTask* task(const std::string& id) const;
};

const char* toString(InstanceStatus status);

// Task ids become container names: letters, digits, '.', '-', '_'.
bool isValidTaskId(const std::string& id);

// Parses a desired-state document (a control endpoint response). A document with any
// error is rejected as a whole (P6): the caller keeps its last good state. The control
// protocol and state.json are JSON, so the text is strict JSON, checked like a .json
// definition: YAML that happens to parse is not a response a server meant to send.
Parsed<DesiredState> parseDesiredState(std::string_view text, const std::string& origin);
Parsed<DesiredState> parseDesiredState(std::string_view text, const std::string& origin, DocumentFormat format);

}  // namespace daemonlet::config
