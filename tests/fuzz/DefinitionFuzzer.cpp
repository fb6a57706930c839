// Any bytes in, never a crash or a hang: the parser sees files and control responses
// that nobody checked.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/DesiredState.h"
#include "config/TaskDefinitionParser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto definition = daemonlet::config::parseTaskDefinition(text, "fuzz");
  for (const auto& d : definition.diagnostics) (void)d.format();
  (void)daemonlet::config::parseDesiredState(text, "fuzz");
  return 0;
}
