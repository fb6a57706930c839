#include "agent/host/ContainerdModule.h"

#include <filesystem>
#include <optional>
#include <stdexcept>

#include "agent/SharedLibrary.h"

namespace daemonlet::agent {

runtime::RuntimePtr loadContainerdRuntime(asio::any_io_executor executor, const std::string& endpoint,
                                          runtime::ContainerdRuntime::Options options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path binary = fs::read_symlink("/proc/self/exe", ec);
  const fs::path dir = binary.parent_path();
  std::string tried;
  for (const fs::path& candidate : {dir / runtime::kContainerdModuleFile, dir / ".." / "lib" / "daemonlet" / runtime::kContainerdModuleFile}) {
    if (!fs::exists(candidate, ec)) {
      tried += "; " + candidate.lexically_normal().string() + ": not there";
      continue;
    }
    // Never closed (SharedLibrary.h): the adapter's threads and gRPC's outlive any owner.
    std::optional<SharedLibrary> module;
    try {
      module.emplace(candidate.c_str(), "daemonlet");
    } catch (const std::exception& e) {
      tried += std::string("; ") + e.what();
      continue;
    }
    runtime::MakeContainerdRuntime* make = nullptr;
    module->bind(make, runtime::kMakeContainerdRuntimeSymbol);
    return make(std::move(executor), endpoint, std::move(options));
  }
  throw std::runtime_error("the containerd runtime module " + std::string(runtime::kContainerdModuleFile) + " cannot be loaded" + tried);
}

}  // namespace daemonlet::agent
