#pragma once
// A problem found in user input, positioned so a person can jump to it:
// "FILE:LINE:COL: field 'containerDefinitions[0].memory': expected a number, got \"lots\"".
#include <optional>
#include <string>
#include <vector>

namespace daemonlet::config {

enum class Severity { Warning, Error };

struct Diagnostic {
  Severity severity = Severity::Error;
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (file missing, ...)
  int column = 0;  // 1-based
  std::string field;  // dotted path, empty when the problem is with the whole file
  std::string message;

  // The one line printed to users and logs.
  std::string format() const;
};

using Diagnostics = std::vector<Diagnostic>;

bool hasErrors(const Diagnostics& diagnostics);

// Orders diagnostics by file, then line and column, as a compiler prints them.
void sortByPosition(Diagnostics& diagnostics);

}  // namespace daemonlet::config

namespace daemonlet::config {

// The outcome of reading one piece of input: a value when it is usable, and everything
// worth telling the user either way.
template <class T>
struct Parsed {
  std::optional<T> value;
  Diagnostics diagnostics;

  bool ok() const { return value.has_value() && !hasErrors(diagnostics); }
};

}  // namespace daemonlet::config
