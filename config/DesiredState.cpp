#include "config/DesiredState.h"

#include <regex>

#include <fmt/format.h>

#include "config/FieldReader.h"
#include "config/TaskDefinitionReader.h"

namespace daemonlet::config {

const TaskDefinition* DesiredState::daemon(const std::string& family) const {
  for (const auto& d : daemons) {
    if (d.family == family) return &d;
  }
  return nullptr;
}

const ApplicationTask* DesiredState::task(const std::string& id) const {
  for (const auto& t : tasks) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

const char* toString(InstanceStatus status) {
  return status == InstanceStatus::Active ? "ACTIVE" : "DRAINING";
}

bool isValidTaskId(const std::string& id) {
  static const std::regex pattern("[A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
  return std::regex_match(id, pattern);
}

TaskRestart readTaskRestart(const YAML::Node& node, FieldReader& r, const std::string& field) {
  auto text = r.string(node, field);
  if (!text) return TaskRestart::Always;
  auto restart = parseTaskRestart(*text);
  if (!restart) r.error(node, field, fmt::format("expected always, on-failure or never, got \"{}\"", *text));
  return restart.value_or(TaskRestart::Always);
}

namespace {
std::optional<DesiredState> readDesiredState(const YAML::Node& doc, const std::string& origin, Diagnostics& out) {
  FieldReader r(origin, out);
  if (!r.expectMap(doc, "(document)")) return std::nullopt;
  r.checkKeys(doc, "", {"generation", "instanceStatus", "daemons", "tasks"}, {});
  DesiredState state;
  if (auto g = r.integer(doc["generation"], "generation")) state.generation = *g;
  if (auto s = r.string(doc["instanceStatus"], "instanceStatus")) {
    if (*s == "DRAINING") state.instanceStatus = InstanceStatus::Draining;
    else if (*s != "ACTIVE") r.error(doc["instanceStatus"], "instanceStatus", fmt::format("expected ACTIVE or DRAINING, got \"{}\"", *s));
  }
  const YAML::Node daemons = doc["daemons"];
  if (!isAbsent(daemons) && r.expectList(daemons, "daemons")) {
    for (std::size_t i = 0; i < daemons.size(); ++i) {
      const std::string f = fmt::format("daemons[{}]", i);
      auto def = readTaskDefinition(daemons[i], r, f);
      if (!def) continue;
      if (state.daemon(def->family)) {
        r.error(daemons[i]["family"], joinField(f, "family"), fmt::format("daemon family '{}' appears twice", def->family));
        continue;
      }
      state.daemons.push_back(std::move(*def));
    }
  }
  const YAML::Node tasks = doc["tasks"];
  if (!isAbsent(tasks) && r.expectList(tasks, "tasks")) {
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const std::string f = fmt::format("tasks[{}]", i);
      if (!r.expectMap(tasks[i], f)) continue;
      r.checkKeys(tasks[i], f, {"id", "definition", "restart"}, {});
      auto id = r.string(tasks[i]["id"], joinField(f, "id"));
      if (isAbsent(tasks[i]["id"])) r.error(tasks[i], joinField(f, "id"), "required field is missing");
      if (id && !isValidTaskId(*id)) r.error(tasks[i]["id"], joinField(f, "id"), fmt::format("'{}' is not a valid task id: use letters, digits, '.', '-' or '_'", *id));
      if (id && state.task(*id)) r.error(tasks[i]["id"], joinField(f, "id"), fmt::format("task id '{}' appears twice", *id));
      if (isAbsent(tasks[i]["definition"])) {
        r.error(tasks[i], joinField(f, "definition"), "required field is missing");
        continue;
      }
      auto def = readTaskDefinition(tasks[i]["definition"], r, joinField(f, "definition"));
      auto restart = readTaskRestart(tasks[i]["restart"], r, joinField(f, "restart"));
      if (id && def) state.tasks.push_back({*id, std::move(*def), restart});
    }
  }
  return state;
}
}  // namespace
Parsed<DesiredState> parseDesiredState(std::string_view text, const std::string& origin) {
  return parseDesiredState(text, origin, DocumentFormat::Json);
}

Parsed<DesiredState> parseDesiredState(std::string_view text, const std::string& origin, DocumentFormat format) {
  Parsed<DesiredState> out;
  auto doc = format == DocumentFormat::Json ? parseJsonDocument(text, origin, out.diagnostics)
                                            : parseDocument(text, origin, out.diagnostics);
  if (!doc) return out;
  guardParse(out.diagnostics, origin, [&] { out.value = readDesiredState(*doc, origin, out.diagnostics); });
  sortByPosition(out.diagnostics);
  if (hasErrors(out.diagnostics)) out.value.reset();
  return out;
}

}  // namespace daemonlet::config
