#include "agent/cli/ValidateCommand.h"

#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "config/AgentConfig.h"
#include "config/DefinitionDirectory.h"
#include "config/TaskDefinitionParser.h"
#include "config/TaskPolicy.h"

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

// The taskPolicy of a config named on the same command line: application tasks are
// checked against it as the agent would, and a refusal is an error naming the field.
// Without a config nothing is assumed: the policy is the host's, not the file's.
class Validator {
 public:
  Validator(std::optional<config::TaskPolicy> policy, std::ostream& out, std::ostream& err)
      : policy_(std::move(policy)), out_(out), err_(err) {}

  bool path(const fs::path& p) {
    std::error_code ec;
    return fs::is_directory(p, ec) ? directory(p) : file(p);
  }

 private:
  // True when the task passes the policy (or there is none to check).
  bool allowed(const config::TaskDefinition& def, const std::string& file) {
    if (!policy_) return true;
    Diagnostics refused;
    for (const auto& r : config::checkTaskPolicy(*policy_, def)) {
      refused.push_back({config::Severity::Error, file, 0, 0, r.field, "refused by taskPolicy: " + r.reason});
    }
    print(refused, err_);
    return refused.empty();
  }

  bool directory(const fs::path& dir) {
    auto load = config::loadDefinitionDirectory(dir);
    print(load.diagnostics, err_);
    bool ok = !config::hasErrors(load.diagnostics);
    for (const auto& d : load.state.daemons) out_ << fmt::format("{}: ok: daemon {}\n", d.sourceFile, describe(d));
    for (const auto& t : load.state.tasks) {
      if (!allowed(t.definition, t.definition.sourceFile)) {
        ok = false;
        continue;
      }
      out_ << fmt::format("{}: ok: task {}: {}\n", t.definition.sourceFile, t.id, describe(t.definition));
    }
    return ok;
  }

  bool file(const fs::path& file) {
    Diagnostics diagnostics;
    auto text = config::readTextFile(file, diagnostics);
    if (!text) {
      print(diagnostics, err_);
      return false;
    }
    if (config::looksLikeAgentConfig(*text)) {
      config::AgentConfig cfg;
      config::applyConfigText(cfg, *text, file.string(), diagnostics);
      print(diagnostics, err_);
      if (config::hasErrors(diagnostics)) return false;
      out_ << fmt::format("{}: ok: agent config\n", file.string());
      return true;
    }
    auto parsed = config::parseTaskDefinition(*text, file.string());
    print(parsed.diagnostics, err_);
    if (!parsed.ok()) return false;
    // A file in a tasks/ folder is an application task (DESIGN 3.4's layout).
    const bool task = file.parent_path().filename() == "tasks";
    if (task && !allowed(*parsed.value, file.string())) return false;
    out_ << fmt::format("{}: ok: task definition {}\n", file.string(), describe(*parsed.value));
    return true;
  }

  std::optional<config::TaskPolicy> policy_;
  std::ostream& out_;
  std::ostream& err_;
};

// The last valid agent config among `files`, wherever it stands on the command line.
std::optional<config::TaskPolicy> policyOf(const std::vector<std::string>& files) {
  std::optional<config::TaskPolicy> policy;
  for (const auto& name : files) {
    std::error_code ec;
    if (fs::is_directory(name, ec)) continue;
    Diagnostics ignored;  // reported when the file itself is validated
    auto text = config::readTextFile(name, ignored);
    if (!text || !config::looksLikeAgentConfig(*text)) continue;
    config::AgentConfig cfg;
    config::applyConfigText(cfg, *text, name, ignored);
    if (!config::hasErrors(ignored)) policy = config::taskPolicyOf(cfg);
  }
  return policy;
}

}  // namespace

int runValidate(const ValidateCommand& command, std::ostream& out, std::ostream& err) {
  Validator validator(policyOf(command.files), out, err);
  bool ok = true;
  for (const auto& name : command.files) ok = validator.path(name) && ok;
  return ok ? 0 : 1;
}

}  // namespace daemonlet::agent
