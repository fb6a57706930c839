#include "config/FieldReader.h"

#include <algorithm>
#include <charconv>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

// The YAML core-schema value of a plain scalar; a string when it is none of the others.
nlohmann::json plainValue(const std::string& s) {
  if (isNullScalar(s)) return nullptr;
  if (auto b = plainBool(s)) return *b;
  if (auto i = plainInteger(s)) return *i;
  if (plainFloat(s)) return std::strtod(s.c_str(), nullptr);
  return s;
}

// `legacy`: as daemonlet 0.1 rendered it, every plain scalar by its YAML value.
nlohmann::json toJson(const YAML::Node& node, const FieldReader& reader, bool legacy = false) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.Scalar()] = toJson(kv.second, reader, legacy);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(toJson(item, reader, legacy));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (isQuoted(node)) return s;
      nlohmann::json value = plainValue(s);
      if (legacy) return value;
      // Null keeps its old rendering whatever its spelling: what null means is decided
      // elsewhere, and the hashes of existing definitions depend on it.
      if (value.is_null() || value.is_string() || reader.readAsValue(node)) return value;
      // A string field holding 1.20 must not come back from state.json as 1.2.
      if (value.dump() != s) return s;
      return value;
    }
    default:
      return nullptr;
  }
}

std::size_t sequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;  // a continuation byte, an overlong lead (C0, C1) or past U+10FFFF (F5-FF)
}

bool isContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Positions a problem found by byte offset the way yaml-cpp positions its nodes: 1-based
// line, 1-based column counted in bytes.
Diagnostic atOffset(std::string_view text, std::size_t offset, const std::string& file, std::string message) {
  offset = std::min(offset, text.size());
  const std::size_t lineStart = offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
  Diagnostic d;
  d.file = file;
  d.line = static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n')) + 1;
  d.column = static_cast<int>(offset - (lineStart == std::string_view::npos ? 0 : lineStart + 1)) + 1;
  d.message = std::move(message);
  return d;
}

bool checkUtf8(std::string_view text, const std::string& file, Diagnostics& out) {
  const auto bad = firstInvalidUtf8(text);
  if (!bad) return true;
  out.push_back(atOffset(text, *bad, file,
                         fmt::format("invalid UTF-8 (byte 0x{:02X}): only UTF-8 text is accepted",
                                     static_cast<unsigned char>(text[*bad]))));
  return false;
}

// nlohmann's message without its "[json.exception...] parse error at line 2, column 10:"
// and "syntax error while parsing value -" prefixes, which repeat what the position says.
std::string jsonErrorDetail(const std::string& what) {
  std::string detail = what;
  if (auto at = detail.find("parse error"); at != std::string::npos) {
    if (auto colon = detail.find(": ", at); colon != std::string::npos) detail = detail.substr(colon + 2);
  }
  if (detail.rfind("syntax error while parsing", 0) == 0) {
    if (auto dash = detail.find(" - "); dash != std::string::npos) detail = detail.substr(dash + 3);
  }
  return detail;
}

int hexValue(std::string_view s) {
  int v = 0;
  for (char c : s) {
    v *= 16;
    if (c >= '0' && c <= '9') v += c - '0';
    else if (c >= 'a' && c <= 'f') v += c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v += c - 'A' + 10;
    else return -1;
  }
  return v;
}

// JSON writes a character past U+FFFF as a surrogate pair of \u escapes; yaml-cpp refuses
// those ("invalid unicode"), so they become YAML's \U escape. Only valid JSON comes here,
// where every backslash is inside a string. The rest of such a line reads two columns to
// the left in diagnostics: no YAML escape of the same code point is twelve bytes long.
std::string joinSurrogatePairs(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (json[i] != '\\' || i + 1 >= json.size()) {
      out += json[i];
      continue;
    }
    if (json[i + 1] == 'u' && i + 12 <= json.size() && json.substr(i + 6, 2) == "\\u") {
      const int high = hexValue(json.substr(i + 2, 4));
      const int low = hexValue(json.substr(i + 8, 4));
      if (high >= 0xD800 && high <= 0xDBFF && low >= 0xDC00 && low <= 0xDFFF) {
        out += fmt::format("\\U{:08X}", 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        i += 11;
        continue;
      }
    }
    out += json.substr(i, 2);  // any other escape, including an escaped backslash
    ++i;
  }
  return out;
}

// yaml-cpp keeps both entries of a key written twice; node[key] then finds the first while
// iteration (and so canonicalJson) ends on the last, and a definition could run one value
// and be saved with the other. Every repeat is reported where it is written.
void reportDuplicateKeys(const YAML::Node& node, const std::string& field, const std::string& file,
                         Diagnostics& out, int depth) {
  // Deeper than any definition; stops a hostile document from exhausting the stack.
  if (depth > 256) return;
  if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      reportDuplicateKeys(node[i], joinField(field, fmt::format("[{}]", i)), file, out, depth + 1);
    }
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    const std::string path = joinField(field, key);
    if (kv.first.IsScalar()) {
      const YAML::Mark at = kv.first.Mark();
      auto [first, inserted] = seen.emplace(key, at);
      if (!inserted) {
        Diagnostic d;
        d.file = file;
        d.line = at.line + 1;
        d.column = at.column + 1;
        d.field = path;
        d.message = fmt::format("duplicate key '{}' (first at line {}, column {}): remove one", key,
                                first->second.line + 1, first->second.column + 1);
        out.push_back(std::move(d));
      }
    }
    reportDuplicateKeys(kv.second, path, file, out, depth + 1);
  }
}

}  // namespace

bool isAbsent(const YAML::Node& value) { return !value.IsDefined() || value.IsNull(); }

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

bool FieldReader::readAsValue(const YAML::Node& scalar) const {
  return scalar.Mark().pos >= 0 && readAsValue_.count(scalar.Mark().pos) > 0;
}

void FieldReader::noteReadAsValue(const YAML::Node& scalar) {
  if (scalar.Mark().pos >= 0) readAsValue_.insert(scalar.Mark().pos);
}

std::optional<std::int64_t> FieldReader::integer(const YAML::Node& value, const std::string& field) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (value.IsScalar() && !isQuoted(value)) {
    if (auto i = plainInteger(value.Scalar())) {
      noteReadAsValue(value);
      return i;
    }
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
    if (auto b = plainBool(value.Scalar())) {
      noteReadAsValue(value);
      return b;
    }
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
    // null is the same as absent (DESIGN 3.3): describe output writes every unset field so.
    if (supported.count(key) || isAbsent(kv.second)) continue;
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

std::optional<std::size_t> firstInvalidUtf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = sequenceLength(bytes[i]);
    if (length == 0 || i + length > text.size()) return i;
    for (std::size_t k = 1; k < length; ++k) {
      if (!isContinuation(bytes[i + k])) return i;
    }
    // The second byte's range rules out what the lead alone cannot: overlong three- and
    // four-byte forms, UTF-16 surrogates, and code points past U+10FFFF.
    if (length >= 3) {
      const unsigned char lead = bytes[i], second = bytes[i + 1];
      if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second > 0x9F) ||
          (lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second > 0x8F)) {
        return i;
      }
    }
    i += length;
  }
  return std::nullopt;
}

std::optional<YAML::Node> parseDocument(std::string_view text, const std::string& file,
                                        Diagnostics& out) {
  // yaml-cpp passes such bytes through, and json::dump() throws on them much later, in
  // the middle of saving state or answering the API.
  if (!checkUtf8(text, file, out)) return std::nullopt;
  try {
    YAML::Node node = YAML::Load(std::string(text));
    reportDuplicateKeys(node, "", file, out, 0);
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

namespace {

// nlohmann's SAX interface, to check syntax only: unlike parse(), its error callback gets
// the position of every error, a number too large for a double (406) included.
struct JsonSyntaxCheck : nlohmann::json_sax<nlohmann::json> {
  std::size_t position = 0;
  std::string token;
  std::string what;
  int id = 0;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t at, const std::string& lastToken, const nlohmann::detail::exception& e) override {
    position = at;
    token = lastToken;
    what = e.what();
    id = e.id;
    return false;
  }
};

}  // namespace

// Strictness comes from nlohmann::json; the values and their positions still come from
// yaml-cpp, which reads any valid JSON as the same document, so that a .json and a .yaml
// definition get one reader and the same field-level diagnostics.
std::optional<YAML::Node> parseJsonDocument(std::string_view text, const std::string& file,
                                            Diagnostics& out) {
  if (!checkUtf8(text, file, out)) return std::nullopt;
  JsonSyntaxCheck check;
  if (nlohmann::json::sax_parse(text, &check)) return parseDocument(joinSurrogatePairs(text), file, out);
  if (check.id == 406) {
    // A number past what a double holds: the parser stopped right after it.
    const std::size_t at = check.position >= check.token.size() ? check.position - check.token.size() : 0;
    out.push_back(atOffset(text, at, file, fmt::format("invalid JSON: number {} is out of range", check.token)));
    return std::nullopt;
  }
  // `position` counts the characters read, so it names the one the parser stopped at.
  std::size_t offset = check.position > 0 ? check.position - 1 : 0;
  std::string message = "invalid JSON: " + jsonErrorDetail(check.what);
  if (offset > 0 && offset < text.size() && (text[offset] == ']' || text[offset] == '}')) {
    const std::size_t comma = text.find_last_not_of(" \t\r\n", offset - 1);
    if (comma != std::string_view::npos && text[comma] == ',') {
      message = fmt::format("invalid JSON: trailing comma before '{}'", text[offset]);
      offset = comma;
    }
  }
  out.push_back(atOffset(text, offset, file, std::move(message)));
  return std::nullopt;
}

// parseDocument() already refused text that is not UTF-8; replacing rather than throwing
// stays so that computing a definition's identity can never end the process.
std::string canonicalJson(const YAML::Node& document, const FieldReader& reader) {
  return toJson(document, reader).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string legacyCanonicalJson(const YAML::Node& document, const FieldReader& reader) {
  return toJson(document, reader, /*legacy=*/true).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void guardParse(Diagnostics& out, const std::string& origin, const std::function<void()>& parse) {
  try {
    parse();
  } catch (const std::exception& e) {
    out.push_back({Severity::Error, origin, 0, 0, "", fmt::format("could not be read: {}", e.what())});
  }
}

}  // namespace daemonlet::config
