#include "config/DefinitionDirectory.h"

#include <algorithm>

#include <fmt/format.h>

#include "config/TaskDefinitionParser.h"

namespace daemonlet::config {
namespace {

namespace fs = std::filesystem;

// nullopt when `dir` cannot be listed (missing, not a directory, unreadable), with the
// reason in `why`.
std::optional<std::vector<fs::path>> definitionFiles(const fs::path& dir, std::string& why) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    why = ec ? fmt::format("{}: {}", dir.string(), ec.message()) : fmt::format("{}: no such directory", dir.string());
    return std::nullopt;
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && isDefinitionFile(it->path())) files.push_back(it->path());
  }
  if (ec) {
    why = fmt::format("{}: cannot be listed: {}", dir.string(), ec.message());
    return std::nullopt;
  }
  std::sort(files.begin(), files.end());  // stable order: same input, same plan
  return files;
}

bool inDirectory(const std::string& file, const fs::path& dir) {
  return fs::path(file).parent_path() == dir;
}

void note(Diagnostics& out, const fs::path& file, Severity severity, std::string message) {
  out.push_back({severity, file.string(), 0, 0, "", std::move(message)});
}

}  // namespace

bool isDefinitionFile(const fs::path& path) {
  const auto ext = path.extension().string();
  const auto name = path.filename().string();
  return !name.empty() && name.front() != '.' && (ext == ".json" || ext == ".yaml" || ext == ".yml");
}

DirectoryLoad loadDefinitionDirectory(const fs::path& dir, const DesiredState* lastGood) {
  DirectoryLoad out;
  if (lastGood) {
    out.state.generation = lastGood->generation;
    out.state.instanceStatus = lastGood->instanceStatus;
  }
  std::string why;
  auto daemonFiles = definitionFiles(dir / "daemons", why);
  if (!daemonFiles) {
    const bool hadDaemons = lastGood && std::any_of(lastGood->daemons.begin(), lastGood->daemons.end(),
                                                    [&](const TaskDefinition& d) { return inDirectory(d.sourceFile, dir / "daemons"); });
    if (hadDaemons) {
      out.problems.push_back(why + "; keeping the last good daemons from it");
      for (const auto& d : lastGood->daemons) {
        if (inDirectory(d.sourceFile, dir / "daemons")) out.state.daemons.push_back(d);
      }
    }
    daemonFiles.emplace();
  }
  auto taskFiles = definitionFiles(dir / "tasks", why);
  if (!taskFiles) {
    if (lastGood && !lastGood->tasks.empty()) {
      out.problems.push_back(why + "; keeping the last good tasks from it");
      out.state.tasks = lastGood->tasks;
    }
    taskFiles.emplace();
  }
  for (const auto& p : out.problems) note(out.diagnostics, dir, Severity::Warning, p);
  std::error_code ec;
  if (!lastGood && !fs::is_directory(dir, ec)) note(out.diagnostics, dir, Severity::Warning, "no such directory: nothing to run until it appears");

  for (const auto& file : *daemonFiles) {
    auto parsed = loadTaskDefinitionFile(file);
    out.diagnostics.insert(out.diagnostics.end(), parsed.diagnostics.begin(), parsed.diagnostics.end());
    std::optional<TaskDefinition> def = parsed.ok() ? std::move(parsed.value) : std::nullopt;
    if (!def && lastGood) {
      for (const auto& d : lastGood->daemons) {
        if (d.sourceFile == file.string()) {
          def = d;
          note(out.diagnostics, file, Severity::Warning,
               fmt::format("keeping the last good version of daemon '{}' (r{})", d.family, d.revision));
        }
      }
    }
    if (!def) continue;
    if (const TaskDefinition* other = out.state.daemon(def->family)) {
      note(out.diagnostics, file, Severity::Error,
           fmt::format("daemon family '{}' is already defined in {}; this file is skipped", def->family, other->sourceFile));
      continue;
    }
    out.state.daemons.push_back(std::move(*def));
  }

  for (const auto& file : *taskFiles) {
    const std::string id = file.stem().string();
    if (!isValidTaskId(id)) {
      note(out.diagnostics, file, Severity::Error,
           fmt::format("'{}' is not a valid task id (the file name): use letters, digits, '.', '-' or '_'", id));
      continue;
    }
    if (out.state.task(id)) {
      note(out.diagnostics, file, Severity::Error, fmt::format("task id '{}' is defined by another file too; this file is skipped", id));
      continue;
    }
    auto parsed = loadTaskDefinitionFile(file);
    out.diagnostics.insert(out.diagnostics.end(), parsed.diagnostics.begin(), parsed.diagnostics.end());
    if (parsed.ok()) {
      const TaskRestart restart = parsed.value->restart.value_or(TaskRestart::Always);
      out.state.tasks.push_back({id, std::move(*parsed.value), restart});
    } else if (const ApplicationTask* previous = lastGood ? lastGood->task(id) : nullptr) {
      out.state.tasks.push_back(*previous);
      note(out.diagnostics, file, Severity::Warning, fmt::format("keeping the last good version of task '{}'", id));
    }
  }
  return out;
}

}  // namespace daemonlet::config
