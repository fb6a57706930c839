#include "config/FieldReader.h"

#include <algorithm>
#include <charconv>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace daemonlet::config {
namespace {

bool isNullScalar(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

std::optional<bool> plainBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::optional<std::int64_t> plainInteger(const std::string& s) {
  std::string_view v = s;
  if (!v.empty() && v.front() == '+') v.remove_prefix(1);
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || end != v.data() + v.size() || v.empty()) return std::nullopt;
  return out;
}

bool plainFloat(const std::string& s) {
  static const std::regex number(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  return std::regex_match(s, number);
}

nlohmann::json toJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.Scalar()] = toJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(toJson(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (isQuoted(node)) return s;
      if (isNullScalar(s)) return nullptr;
      if (auto b = plainBool(s)) return *b;
      if (auto i = plainInteger(s)) return *i;
      if (plainFloat(s)) return std::strtod(s.c_str(), nullptr);
      return s;
    }
    default:
      return nullptr;
  }
}

}  // namespace

std::string joinField(const std::string& prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  if (!key.empty() && key.front() == '[') return prefix + std::string(key);
  return prefix + "." + std::string(key);
}

bool isQuoted(const YAML::Node& scalar) { return scalar.Tag() == "!"; }

std::string describe(const YAML::Node& value) {
  switch (value.Type()) {
    case YAML::NodeType::Map: return "an object";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar:
      if (isQuoted(value)) return nlohmann::json(value.Scalar()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      if (isNullScalar(value.Scalar())) return "null";
      return value.Scalar();
    default: return "nothing";
  }
}

void FieldReader::add(Severity severity, const YAML::Node& at, const std::string& field,
                      std::string message) {
  Diagnostic d;
  d.severity = severity;
  d.file = file_;
  if (at.IsDefined() && at.Mark().line >= 0) {
    d.line = at.Mark().line + 1;
    d.column = at.Mark().column + 1;
  }
  d.field = field;
  d.message = std::move(message);
  out_.push_back(std::move(d));
}

std::size_t FieldReader::errorCount() const {
  return static_cast<std::size_t>(std::count_if(out_.begin(), out_.end(), [](const Diagnostic& d) {
    return d.severity == Severity::Error;
  }));
}

void FieldReader::error(const YAML::Node& at, const std::string& field, std::string message) {
  add(Severity::Error, at, field, std::move(message));
}

void FieldReader::warning(const YAML::Node& at, const std::string& field, std::string message) {
  add(Severity::Warning, at, field, std::move(message));
}

std::optional<std::string> FieldReader::string(const YAML::Node& value, const std::string& field) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (!value.IsScalar()) {
    error(value, field, fmt::format("expected a string, got {}", describe(value)));
    return std::nullopt;
  }
  return value.Scalar();
}

std::optional<std::int64_t> FieldReader::integer(const YAML::Node& value, const std::string& field) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (value.IsScalar() && !isQuoted(value)) {
    if (auto i = plainInteger(value.Scalar())) return i;
    if (plainFloat(value.Scalar())) {
      error(value, field, fmt::format("expected a whole number, got {}", describe(value)));
      return std::nullopt;
    }
  }
  error(value, field, fmt::format("expected a number, got {}", describe(value)));
  return std::nullopt;
}

std::optional<bool> FieldReader::boolean(const YAML::Node& value, const std::string& field) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (value.IsScalar() && !isQuoted(value)) {
    if (auto b = plainBool(value.Scalar())) return b;
  }
  error(value, field, fmt::format("expected true or false, got {}", describe(value)));
  return std::nullopt;
}

bool FieldReader::expectMap(const YAML::Node& value, const std::string& field) {
  if (value.IsMap()) return true;
  error(value, field, fmt::format("expected an object, got {}", describe(value)));
  return false;
}

bool FieldReader::expectList(const YAML::Node& value, const std::string& field) {
  if (value.IsSequence()) return true;
  error(value, field, fmt::format("expected a list, got {}", describe(value)));
  return false;
}

std::optional<std::vector<std::string>> FieldReader::stringList(const YAML::Node& value,
                                                                const std::string& field) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (!expectList(value, field)) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto s = string(value[i], joinField(field, fmt::format("[{}]", i)));
    if (s) out.push_back(*s);
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::map<std::string, std::string>> FieldReader::stringMap(
    const YAML::Node& value, const std::string& field) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (!expectMap(value, field)) return std::nullopt;
  std::map<std::string, std::string> out;
  bool ok = true;
  for (const auto& kv : value) {
    auto s = string(kv.second, joinField(field, kv.first.Scalar()));
    if (s) out[kv.first.Scalar()] = *s;
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

void FieldReader::checkKeys(const YAML::Node& map, const std::string& prefix,
                            const std::set<std::string, std::less<>>& supported,
                            const std::set<std::string, std::less<>>& ignored) {
  std::vector<std::string> ignoredSeen;
  for (const auto& kv : map) {
    const std::string& key = kv.first.Scalar();
    if (supported.count(key)) continue;
    if (ignored.count(key)) {
      ignoredSeen.push_back(key);
      continue;
    }
    warning(kv.first, joinField(prefix, key), "unknown field, ignored");
  }
  if (!ignoredSeen.empty()) {
    warning(map, prefix,
            fmt::format("ECS field{} {} do{} not apply on one host and {} ignored",
                        ignoredSeen.size() > 1 ? "s" : "", fmt::join(ignoredSeen, ", "),
                        ignoredSeen.size() > 1 ? "" : "es", ignoredSeen.size() > 1 ? "are" : "is"));
  }
}

std::optional<YAML::Node> parseDocument(std::string_view text, const std::string& file,
                                        Diagnostics& out) {
  try {
    YAML::Node node = YAML::Load(std::string(text));
    return node;
  } catch (const YAML::Exception& e) {
    Diagnostic d;
    d.file = file;
    if (e.mark.line >= 0) {
      d.line = e.mark.line + 1;
      d.column = e.mark.column + 1;
    }
    d.message = fmt::format("syntax error: {}", e.msg);
    out.push_back(std::move(d));
    return std::nullopt;
  }
}

// Invalid UTF-8 is replaced rather than thrown on: a definition's identity must never
// depend on whether its bytes are printable.
std::string canonicalJson(const YAML::Node& document) {
  return toJson(document).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void guardParse(Diagnostics& out, const std::string& origin, const std::function<void()>& parse) {
  try {
    parse();
  } catch (const std::exception& e) {
    out.push_back({Severity::Error, origin, 0, 0, "", fmt::format("could not be read: {}", e.what())});
  }
}

std::string sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

}  // namespace daemonlet::config
