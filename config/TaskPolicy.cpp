#include "config/TaskPolicy.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <string_view>

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

namespace {

// Where `path` leads on the host: symbolic links followed, a missing tail resolved through
// its nearest existing parent (std::filesystem::weakly_canonical). nullopt when the host
// cannot say (a loop, a permission error): such a path is refused.
std::optional<std::string> onHost(const std::string& path) {
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::path(path).lexically_normal(), ec);
  if (ec) return std::nullopt;
  return resolved.string();
}

// Whether `path` lies below `roots`, compared as `paths` says; `why` says where it led.
bool allowedPath(const std::string& path, const std::vector<std::string>& roots, PathResolution paths, std::string& why) {
  if (!pathBelowAny(path, roots)) return false;
  if (paths == PathResolution::Lexical) return true;
  std::vector<std::string> resolvedRoots;
  for (const auto& r : roots) {
    if (auto real = onHost(r)) resolvedRoots.push_back(*real);
  }
  const auto real = onHost(path);
  if (!real) {
    why = " (its symbolic links cannot be resolved)";
    return false;
  }
  if (pathBelowAny(*real, resolvedRoots)) return true;
  why = fmt::format(" (it resolves to {})", *real);
  return false;
}

std::string belowMessage(const std::string& path, const std::string& why, const char* key, const std::vector<std::string>& roots) {
  // "... is not below" reads wrong when the path is below the root only as written.
  if (why.empty()) return fmt::format("{} is not below taskPolicy.{} {}", path, key, listed(roots));
  return fmt::format("{}{}: not below taskPolicy.{} {}", path, why, key, listed(roots));
}

// The local driver with o=bind (or rbind) mounts `device`, a host path, like a bind mount.
std::optional<std::string> boundHostPath(const DockerVolumeConfiguration& v) {
  if (v.driver != "local") return std::nullopt;
  auto o = v.driverOpts.find("o");
  auto device = v.driverOpts.find("device");
  if (o == v.driverOpts.end() || device == v.driverOpts.end()) return std::nullopt;
  std::string_view opts = o->second;
  while (!opts.empty()) {
    const auto comma = opts.find(',');
    const std::string_view opt = opts.substr(0, comma);
    if (opt == "bind" || opt == "rbind") return device->second;
    if (comma == std::string_view::npos) break;
    opts.remove_prefix(comma + 1);
  }
  return std::nullopt;
}

// The agent's own secret a path lies in, unless a root opens it explicitly.
const TaskPolicy::Excluded* excludedFor(const TaskPolicy& policy, const std::string& file) {
  for (const auto& e : policy.environmentFileExcludes) {
    if (e.path.empty() || !pathBelowAny(file, {e.path})) continue;
    const bool opened = std::any_of(policy.environmentFileRoots.begin(), policy.environmentFileRoots.end(),
                                    [&](const std::string& root) { return pathBelowAny(root, {e.path}); });
    if (!opened) return &e;
  }
  return nullptr;
}

}  // namespace

bool sharedVolumeAllowed(const TaskPolicy& policy, const std::string& name, const std::map<std::string, std::string>& labels) {
  auto by = labels.find(kSharedByLabel);
  if (by != labels.end() && by->second == "task") return true;
  return std::any_of(policy.sharedVolumes.begin(), policy.sharedVolumes.end(), [&](const std::string& n) { return n == "*" || n == name; });
}

std::vector<PolicyRefusal> checkTaskPolicy(const TaskPolicy& policy, const TaskDefinition& def, PathResolution paths) {
  std::vector<PolicyRefusal> out;
  if (!policy.allowHostNetwork && def.networkMode == NetworkMode::Host) {
    out.push_back({"networkMode", "host networking is not allowed (taskPolicy.allowHostNetwork is false)"});
  }
  if (!policy.allowHostPid && def.pidMode == "host") {
    out.push_back({"pidMode", "the host's PID namespace is not allowed (taskPolicy.allowHostPid is false)"});
  }
  for (std::size_t i = 0; i < def.volumes.size(); ++i) {
    const auto& v = def.volumes[i];
    std::string why;
    if (v.hostSourcePath && !allowedPath(*v.hostSourcePath, policy.hostPathRoots, paths, why)) {
      out.push_back({fmt::format("volumes[{}].host.sourcePath", i),
                     why.empty() ? fmt::format("host path {} is not below taskPolicy.hostPathRoots {}", *v.hostSourcePath, listed(policy.hostPathRoots))
                                 : "host path " + belowMessage(*v.hostSourcePath, why, "hostPathRoots", policy.hostPathRoots)});
    }
    const auto device = v.dockerVolume ? boundHostPath(*v.dockerVolume) : std::nullopt;
    if (device && !allowedPath(*device, policy.hostPathRoots, paths, why)) {
      out.push_back({fmt::format("volumes[{}].dockerVolumeConfiguration.driverOpts.device", i),
                     fmt::format("the local driver binds host path {}{} which is not below taskPolicy.hostPathRoots {}", *device, why,
                                 listed(policy.hostPathRoots))});
    }
  }
  for (std::size_t i = 0; i < def.containers.size(); ++i) {
    const auto& c = def.containers[i];
    // Only a refusal needs the field's name: checked for every task on every plan.
    const auto at = [i] { return fmt::format("containerDefinitions[{}]", i); };
    if (!policy.allowPrivileged && c.privileged) {
      out.push_back({at() + ".privileged", "privileged containers are not allowed (taskPolicy.allowPrivileged is false)"});
    }
    for (std::size_t k = 0; k < c.linuxParameters.capabilitiesAdd.size(); ++k) {
      const auto& cap = c.linuxParameters.capabilitiesAdd[k];
      if (!capabilityAllowed(cap, policy.allowedCapabilities)) {
        out.push_back({fmt::format("{}.linuxParameters.capabilities.add[{}]", at(), k),
                       fmt::format("capability {} is not in taskPolicy.allowedCapabilities {}", cap, listed(policy.allowedCapabilities))});
      }
    }
    for (std::size_t k = 0; k < c.environmentFiles.size(); ++k) {
      const auto& file = c.environmentFiles[k];
      const auto field = [&] { return fmt::format("{}.environmentFiles[{}]", at(), k); };
      std::string why;
      if (!allowedPath(file, policy.environmentFileRoots, paths, why)) {
        out.push_back({field(), belowMessage(file, why, "environmentFileRoots", policy.environmentFileRoots)});
        continue;
      }
      const std::string real = paths == PathResolution::OnHost ? onHost(file).value_or(file) : file;
      const auto* excluded = excludedFor(policy, file);
      if (!excluded) excluded = excludedFor(policy, real);
      if (excluded) {
        out.push_back({field(), fmt::format("{} lies in {}, {}; environmentFiles never read it", file, excluded->path, excluded->what)});
      }
    }
  }
  return out;
}

}  // namespace daemonlet::config
