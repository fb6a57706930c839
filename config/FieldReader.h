#pragma once
// Internal to config/: typed access to a YAML/JSON document that reports every problem
// with its file, line, column and field path. yaml-cpp parses JSON too, which is why both
// formats get positions; nlohmann::json only decides whether a .json file is strict JSON.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/Diagnostic.h"

namespace daemonlet::config {

class FieldReader {
 public:
  FieldReader(std::string file, Diagnostics& out) : file_(std::move(file)), out_(out) {}

  const std::string& file() const { return file_; }
  std::size_t errorCount() const;

  void error(const YAML::Node& at, const std::string& field, std::string message);
  void warning(const YAML::Node& at, const std::string& field, std::string message);

  // Each getter returns nullopt when the key is absent or has the wrong type; the latter
  // is reported. `field` is the full path of the value read, used in messages.
  std::optional<std::string> string(const YAML::Node& value, const std::string& field);
  std::optional<std::int64_t> integer(const YAML::Node& value, const std::string& field);
  std::optional<bool> boolean(const YAML::Node& value, const std::string& field);
  std::optional<std::vector<std::string>> stringList(const YAML::Node& value,
                                                     const std::string& field);
  std::optional<std::map<std::string, std::string>> stringMap(const YAML::Node& value,
                                                              const std::string& field);
  bool expectMap(const YAML::Node& value, const std::string& field);
  bool expectList(const YAML::Node& value, const std::string& field);

  // Reports keys of `map` that are in neither set: ignored ones once together, unknown ones
  // one warning each.
  void checkKeys(const YAML::Node& map, const std::string& prefix,
                 const std::set<std::string, std::less<>>& supported,
                 const std::set<std::string, std::less<>>& ignored);

  // True when a getter above took this plain scalar as a number or boolean.
  bool readAsValue(const YAML::Node& scalar) const;

 private:
  void add(Severity severity, const YAML::Node& at, const std::string& field,
           std::string message);
  void noteReadAsValue(const YAML::Node& scalar);

  std::string file_;
  Diagnostics& out_;
  std::set<int> readAsValue_;  // Mark().pos: unique per node within one document
};

// True when a field is missing or null: the two mean the same everywhere (DESIGN 3.3).
bool isAbsent(const YAML::Node& value);

// "a" + "b" -> "a.b"; "" + "b" -> "b"; "a" + "[2]" -> "a[2]".
std::string joinField(const std::string& prefix, std::string_view key);

// How a value looks to a person: "lots" (quoted), 12, an object, a list, null.
std::string describe(const YAML::Node& value);

// True when the scalar was written quoted ("512"), i.e. meant as a string.
bool isQuoted(const YAML::Node& scalar);

// The offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), if there is one.
std::optional<std::size_t> firstInvalidUtf8(std::string_view text);

// Parses a whole YAML document; text that is not UTF-8 and syntax errors become one
// positioned diagnostic. A key repeated in one mapping is an error at each repeat; the
// document is still returned then, so that its other problems are reported too.
std::optional<YAML::Node> parseDocument(std::string_view text, const std::string& file,
                                        Diagnostics& out);

// The same for text that must be strict JSON (RFC 8259): what YAML would also accept, such
// as a trailing comma or a comment, is an error here.
std::optional<YAML::Node> parseJsonDocument(std::string_view text, const std::string& file,
                                            Diagnostics& out);

// The document as JSON with sorted keys and no whitespace. Quoted scalars are strings.
// A plain scalar is rendered by value (number, boolean, null) when `reader` read it as a
// number or boolean, or when its text is exactly how JSON writes that value ("5", "0.5",
// "true"); any other plain scalar ("1.20", "007", "True") is a string with its source text.
// That makes the rendering a fixed point of "dump, parse as JSON, read again", so that a
// definition saved in state.json comes back with the same values and the same hash.
std::string canonicalJson(const YAML::Node& document, const FieldReader& reader);
// The canonical JSON daemonlet 0.1 computed (plain scalars re-rendered: 1.20 as 1.2), so
// that containers it labelled are still recognised after an upgrade (P5).
std::string legacyCanonicalJson(const YAML::Node& document, const FieldReader& reader);

// Runs `parse`; an exception escaping it (a parser bug, or yaml-cpp on input nobody
// foresaw) becomes an error on `origin` instead of ending the process.
void guardParse(Diagnostics& out, const std::string& origin, const std::function<void()>& parse);

}  // namespace daemonlet::config
