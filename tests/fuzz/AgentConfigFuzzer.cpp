// The agent config is read at every start; a typo must be an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/AgentConfig.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace daemonlet::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  AgentConfig config;
  Diagnostics diagnostics;
  applyConfigText(config, text, "fuzz", diagnostics);
  for (const auto& d : diagnostics) (void)d.format();
  (void)looksLikeAgentConfig(text);
  (void)runtimeEndpoint(config);
  return 0;
}
