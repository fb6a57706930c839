#include "agent/cli/ValidateCommand.h"

#include <filesystem>

#include <fmt/format.h>

#include "config/AgentConfig.h"
#include "config/DefinitionDirectory.h"
#include "config/TaskDefinitionParser.h"

namespace daemonlet::agent {
namespace {

namespace fs = std::filesystem;
using config::Diagnostics;

void print(const Diagnostics& diagnostics, std::ostream& err) {
  for (const auto& d : diagnostics) err << d.format() << '\n';
}

std::string describe(const config::TaskDefinition& def) {
  return fmt::format("{} r{} ({} container{}, hash {})", def.family, def.revision, def.containers.size(),
                     def.containers.size() == 1 ? "" : "s", def.hash);
}

bool validateDirectory(const fs::path& dir, std::ostream& out, std::ostream& err) {
  auto load = config::loadDefinitionDirectory(dir);
  print(load.diagnostics, err);
  for (const auto& d : load.state.daemons) out << fmt::format("{}: ok: daemon {}\n", d.sourceFile, describe(d));
  for (const auto& t : load.state.tasks) out << fmt::format("{}: ok: task {}: {}\n", t.definition.sourceFile, t.id, describe(t.definition));
  return !config::hasErrors(load.diagnostics);
}

bool validateFile(const fs::path& file, std::ostream& out, std::ostream& err) {
  Diagnostics diagnostics;
  auto text = config::readTextFile(file, diagnostics);
  if (!text) {
    print(diagnostics, err);
    return false;
  }
  if (config::looksLikeAgentConfig(*text)) {
    config::AgentConfig cfg;
    config::applyConfigText(cfg, *text, file.string(), diagnostics);
    print(diagnostics, err);
    if (config::hasErrors(diagnostics)) return false;
    out << fmt::format("{}: ok: agent config\n", file.string());
    return true;
  }
  auto parsed = config::parseTaskDefinition(*text, file.string());
  print(parsed.diagnostics, err);
  if (!parsed.ok()) return false;
  out << fmt::format("{}: ok: task definition {}\n", file.string(), describe(*parsed.value));
  return true;
}

}  // namespace

int runValidate(const ValidateCommand& command, std::ostream& out, std::ostream& err) {
  bool ok = true;
  for (const auto& name : command.files) {
    std::error_code ec;
    const fs::path path(name);
    ok = (fs::is_directory(path, ec) ? validateDirectory(path, out, err) : validateFile(path, out, err)) && ok;
  }
  return ok ? 0 : 1;
}

}  // namespace daemonlet::agent
