// Desired-state documents come from a control endpoint: strict JSON from the network.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/DesiredState.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace daemonlet::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parseDesiredState(text, "fuzz", DocumentFormat::Json);
  for (const auto& d : parsed.diagnostics) (void)d.format();
  return 0;
}
