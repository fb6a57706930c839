#include "agent/host/PauseImage.h"

#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/Sha256.h"

// The program is linked in as it was built (agent/CMakeLists.txt names the file).
asm(".section .rodata\n"
    ".balign 16\n"
    "daemonlet_pause_begin:\n"
    ".incbin \"" DAEMONLET_PAUSE_PROGRAM "\"\n"
    "daemonlet_pause_end:\n"
    ".previous\n");
extern "C" const char daemonlet_pause_begin[];
extern "C" const char daemonlet_pause_end[];

namespace daemonlet::agent {
namespace {

#if defined(__x86_64__)
constexpr const char* kArchitecture = "amd64";
#elif defined(__aarch64__)
constexpr const char* kArchitecture = "arm64";
#else
#error "name this architecture as OCI images do"
#endif

// One ustar member: a 512-byte header, the data, padding to 512.
void addMember(std::string& tar, const std::string& name, std::string_view data, char type, unsigned mode) {
  char h[512] = {};
  std::snprintf(h, 100, "%s", name.c_str());
  std::snprintf(h + 100, 8, "%07o", mode);
  std::snprintf(h + 108, 8, "%07o", 0u);
  std::snprintf(h + 116, 8, "%07o", 0u);
  std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(data.size()));
  std::snprintf(h + 136, 12, "%011o", 0u);
  h[156] = type;
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);  // six digits, NUL, and the space already there
  tar.append(h, sizeof h);
  tar.append(data);
  tar.append((512 - data.size() % 512) % 512, '\0');
}

void finish(std::string& tar) { tar.append(1024, '\0'); }

}  // namespace

std::string_view pauseProgram() {
  return {daemonlet_pause_begin, static_cast<std::size_t>(daemonlet_pause_end - daemonlet_pause_begin)};
}

std::string pauseImageName() { return "daemonlet/pause:" + config::sha256Hex(pauseProgram()).substr(0, 12); }

std::string pauseImageArchive() {
  std::string layer;
  addMember(layer, "pause", pauseProgram(), '0', 0755);
  finish(layer);
  const std::string diffId = "sha256:" + config::sha256Hex(layer);
  const nlohmann::json image = {{"architecture", kArchitecture},
                                {"os", "linux"},
                                {"config", {{"Entrypoint", {"/pause"}}, {"Labels", {{"io.daemonlet.image", "network-holder"}}}}},
                                {"rootfs", {{"type", "layers"}, {"diff_ids", {diffId}}}},
                                {"history", {{{"created_by", "daemonlet: agent/pause/pause.c, statically linked"}}}}};
  const std::string config = image.dump();
  const std::string configName = config::sha256Hex(config) + ".json";
  const nlohmann::json manifest = nlohmann::json::array({{{"Config", configName}, {"RepoTags", {pauseImageName()}}, {"Layers", {"layer/layer.tar"}}}});
  std::string tar;
  addMember(tar, "layer/", "", '5', 0755);
  addMember(tar, "layer/layer.tar", layer, '0', 0644);
  addMember(tar, configName, config, '0', 0644);
  addMember(tar, "manifest.json", manifest.dump(), '0', 0644);
  finish(tar);
  return tar;
}

}  // namespace daemonlet::agent
