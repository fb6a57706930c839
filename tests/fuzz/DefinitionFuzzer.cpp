// Any bytes in, never a crash or a hang: the parser sees task files nobody checked. Both
// formats, because a .json file is strict JSON and anything else is YAML.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/TaskDefinitionParser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace daemonlet::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto format : {DocumentFormat::Json, DocumentFormat::Yaml}) {
    auto definition = parseTaskDefinition(text, "fuzz", format);
    for (const auto& d : definition.diagnostics) (void)d.format();
  }
  return 0;
}
