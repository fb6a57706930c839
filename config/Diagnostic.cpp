#include "config/Diagnostic.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

namespace daemonlet::config {

std::string Diagnostic::format() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (severity == Severity::Warning) out += "warning: ";
  if (!field.empty()) out += fmt::format("field '{}': ", field);
  out += message;
  return out;
}

bool hasErrors(const Diagnostics& diagnostics) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::Error; });
}

void sortByPosition(Diagnostics& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
  });
}

}  // namespace daemonlet::config
