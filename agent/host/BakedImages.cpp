#include "agent/host/BakedImages.h"

#include <algorithm>
#include <fstream>
#include <vector>

namespace daemonlet::agent {
namespace {

namespace fs = std::filesystem;

bool loadedInto(const fs::path& marker, const std::string& runtimeKey) {
  std::ifstream in(marker);
  for (std::string line; std::getline(in, line);) {
    if (line == runtimeKey) return true;
  }
  return false;
}

}  // namespace

asio::awaitable<int> loadBakedImages(runtime::Runtime& runtime, fs::path directory, std::string runtimeKey, Logger& log) {
  std::vector<fs::path> archives;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".tar" && it->is_regular_file()) archives.push_back(it->path());
  }
  std::sort(archives.begin(), archives.end());
  int loaded = 0;
  for (const auto& archive : archives) {
    const fs::path marker = archive.string() + ".loaded";
    if (loadedInto(marker, runtimeKey)) continue;
    auto r = co_await runtime.loadImage(archive.string());
    if (!r) {
      log.warn("baked images: loading {} failed: {}; its images must come from a registry", archive.string(), r.error().message);
      continue;
    }
    std::ofstream(marker, std::ios::app) << runtimeKey << '\n';
    ++loaded;
    log.info("baked images: loaded {} into {}", archive.filename().string(), runtimeKey);
  }
  co_return loaded;
}

}  // namespace daemonlet::agent
