#include "agent/SecretDirectory.h"

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace daemonlet::agent {
namespace {

std::vector<std::string> split(std::string_view text, char by) {
  std::vector<std::string> out;
  std::string part;
  for (char c : text) {
    if (c == by) {
      out.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  out.push_back(part);
  return out;
}

bool usableFileName(const std::string& name) { return !name.empty() && name != "." && name != ".."; }

runtime::Error notFound(const std::string& name, const std::string& detail) {
  // ECS's wording first (DESIGN 3.3); what to do about it after.
  return {runtime::Error::Code::NotFound, fmt::format("ResourceInitializationError: secret {} not found ({})", name, detail)};
}

}  // namespace

std::optional<SecretReference> parseSecretReference(std::string_view valueFrom) {
  const auto parts = split(valueFrom, ':');
  // arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME[:KEY[:STAGE[:VERSION]]]
  if (parts.size() >= 7 && parts[0] == "arn" && parts[2] == "secretsmanager" && parts[5] == "secret") {
    // A secret's name may have paths (prod/app/db): its last part names the file (DESIGN 3.3).
    SecretReference ref{split(parts[6], '/').back(), std::nullopt};
    if (parts.size() >= 8 && !parts[7].empty()) ref.jsonKey = parts[7];
    if (!usableFileName(ref.file)) return std::nullopt;
    return ref;
  }
  // An SSM parameter name (/app/db/password, db_password) or ARN (arn:...:parameter/app/x).
  const std::string last = split(split(valueFrom, ':').back(), '/').back();
  if (!usableFileName(last)) return std::nullopt;
  return SecretReference{last, std::nullopt};
}

runtime::Result<std::string> SecretDirectory::resolve(const std::string& name, const std::string& valueFrom) const {
  auto ref = parseSecretReference(valueFrom);
  if (!ref) return notFound(name, fmt::format("valueFrom \"{}\" names no file", valueFrom));
  const std::filesystem::path path = directory_ / ref->file;
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound(name, fmt::format("no readable file {} for valueFrom {}", path.string(), valueFrom));
  std::ostringstream content;
  content << in.rdbuf();
  std::string value = content.str();
  if (!ref->jsonKey) {
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
    return value;
  }
  // The parser's own messages quote what they read: never pass them on.
  auto json = nlohmann::json::parse(value, nullptr, false);
  if (!json.is_object()) return notFound(name, fmt::format("{} is not a JSON object, so it has no key {} (valueFrom {})", path.string(), *ref->jsonKey, valueFrom));
  auto it = json.find(*ref->jsonKey);
  if (it == json.end()) return notFound(name, fmt::format("{} has no key {} (valueFrom {})", path.string(), *ref->jsonKey, valueFrom));
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace daemonlet::agent
