#pragma once
// Reads ECS-shaped task definitions (JSON or YAML) and validates them (DESIGN 3.3).
// Every problem in a file is reported, not only the first.
#include <filesystem>
#include <string>
#include <string_view>

#include "config/Diagnostic.h"
#include "config/TaskDefinition.h"

namespace daemonlet::config {

enum class DocumentFormat { Yaml, Json };

// A name ending in .json is strict JSON; anything else is YAML, of which JSON is a part.
DocumentFormat formatOf(const std::string& origin);

// `origin` names the input in diagnostics (a file path, or a URL and field for HTTP).
Parsed<TaskDefinition> parseTaskDefinition(std::string_view text, const std::string& origin,
                                           DocumentFormat format);

// The format is formatOf(origin): callers pass the file name the text came from.
Parsed<TaskDefinition> parseTaskDefinition(std::string_view text, const std::string& origin);

Parsed<TaskDefinition> loadTaskDefinitionFile(const std::filesystem::path& path);

// Reads a whole file; a missing or unreadable file is one diagnostic.
std::optional<std::string> readTextFile(const std::filesystem::path& path, Diagnostics& out);

}  // namespace daemonlet::config
