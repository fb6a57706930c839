// What the engine sends: inspect answers and the event stream, cut into lines. The first
// byte picks where the stream is cut, so that chunk boundaries vary as a socket's would.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/docker/DockerJson.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace daemonlet::runtime::docker;
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto inspect = nlohmann::json::parse(text, nullptr, false);
  (void)parseInspect(inspect);

  std::string buffer;
  std::size_t lines = 0;
  for (std::size_t at = 0; at < text.size(); at += chunk) {
    buffer.append(text.substr(at, chunk));
    takeLines(buffer, [&](std::string_view line) {
      ++lines;
      if (line.empty() || line.find('\n') != std::string_view::npos) __builtin_trap();  // a framing bug
      (void)parseEvent(line);
    });
    if (buffer.find('\n') != std::string::npos) __builtin_trap();  // a complete line left behind
  }
  (void)parseTime(text);
  (void)lines;
  return 0;
}
