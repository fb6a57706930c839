#include "config/TaskPolicy.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace daemonlet::config {
namespace {

namespace fs = std::filesystem;

// ECS writes capabilities as "NET_ADMIN"; Docker accepts "CAP_NET_ADMIN" and any case.
std::string capabilityName(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::toupper(ch); });
  if (name.rfind("CAP_", 0) == 0) name.erase(0, 4);
  return name;
}

bool capabilityAllowed(const std::string& wanted, const std::vector<std::string>& allowed) {
  const std::string name = capabilityName(wanted);
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
    const std::string allow = capabilityName(a);
    return allow == "ALL" || allow == name;
  });
}

std::string listed(const std::vector<std::string>& list) {
  return list.empty() ? "[] (none)" : fmt::format("[{}]", fmt::join(list, ", "));
}

}  // namespace

std::string PolicyRefusal::format() const { return fmt::format("field '{}': {}", field, reason); }

bool pathBelowAny(const std::string& path, const std::vector<std::string>& rootList) {
  const fs::path p = fs::path(path).lexically_normal();
  if (!p.is_absolute()) return false;
  for (std::string r : rootList) {
    while (r.size() > 1 && r.back() == '/') r.pop_back();  // "/etc/x/" is "/etc/x"
    const fs::path root = fs::path(r).lexically_normal();
    if (!root.is_absolute()) continue;
    // Component by component, so that /etc/daemonlet-other is not below /etc/daemonlet.
    if (std::mismatch(root.begin(), root.end(), p.begin(), p.end()).first == root.end()) return true;
  }
  return false;
}

std::vector<PolicyRefusal> checkTaskPolicy(const TaskPolicy& policy, const TaskDefinition& def) {
  std::vector<PolicyRefusal> out;
  if (!policy.allowHostNetwork && def.networkMode == NetworkMode::Host) {
    out.push_back({"networkMode", "host networking is not allowed (taskPolicy.allowHostNetwork is false)"});
  }
  if (!policy.allowHostPid && def.pidMode == "host") {
    out.push_back({"pidMode", "the host's PID namespace is not allowed (taskPolicy.allowHostPid is false)"});
  }
  for (std::size_t i = 0; i < def.volumes.size(); ++i) {
    const auto& v = def.volumes[i];
    if (v.hostSourcePath && !pathBelowAny(*v.hostSourcePath, policy.hostPathRoots)) {
      out.push_back({fmt::format("volumes[{}].host.sourcePath", i),
                     fmt::format("host path {} is not below taskPolicy.hostPathRoots {}", *v.hostSourcePath, listed(policy.hostPathRoots))});
    }
  }
  for (std::size_t i = 0; i < def.containers.size(); ++i) {
    const auto& c = def.containers[i];
    const std::string at = fmt::format("containerDefinitions[{}]", i);
    if (!policy.allowPrivileged && c.privileged) {
      out.push_back({at + ".privileged", "privileged containers are not allowed (taskPolicy.allowPrivileged is false)"});
    }
    for (std::size_t k = 0; k < c.linuxParameters.capabilitiesAdd.size(); ++k) {
      const auto& cap = c.linuxParameters.capabilitiesAdd[k];
      if (!capabilityAllowed(cap, policy.allowedCapabilities)) {
        out.push_back({fmt::format("{}.linuxParameters.capabilities.add[{}]", at, k),
                       fmt::format("capability {} is not in taskPolicy.allowedCapabilities {}", cap, listed(policy.allowedCapabilities))});
      }
    }
    for (std::size_t k = 0; k < c.environmentFiles.size(); ++k) {
      const auto& file = c.environmentFiles[k];
      if (!pathBelowAny(file, policy.environmentFileRoots)) {
        out.push_back({fmt::format("{}.environmentFiles[{}]", at, k),
                       fmt::format("{} is not below taskPolicy.environmentFileRoots {}", file, listed(policy.environmentFileRoots))});
      }
    }
  }
  return out;
}

}  // namespace daemonlet::config
