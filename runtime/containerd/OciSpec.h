#pragma once
// Internal to runtime/containerd: what Docker would do for us, written out. From a
// ContainerSpec and the image's config we build the OCI runtime spec with the defaults
// containerd's own client uses (oci/spec.go populateDefaultUnixSpec) plus what Docker adds
// (image env/entrypoint/cmd, cgroup mount, hostname, resolv.conf for host networking).
// Pure functions, tested without an engine.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/Container.h"
#include "runtime/Result.h"

namespace daemonlet::runtime::containerd {

// The parts of an image's config (OCI image spec "config") a container inherits.
struct ImageConfig {
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string workingDir;
  std::string user;
  std::vector<std::string> diffIds;  // rootfs.diff_ids, lowest layer first
};

Result<ImageConfig> parseImageConfig(const nlohmann::json& config);

// Where the adapter puts things; not part of ContainerSpec.
struct SpecPlacement {
  std::string cgroupsPath;  // e.g. /daemonlet/<id> (cgroupfs layout)
  std::string hostname;
};

// Error{Unsupported} names any field this adapter cannot honour yet.
Result<nlohmann::json> buildSpec(const ContainerSpec& spec, const ImageConfig& image, const SpecPlacement& placement);

// What the engine applied, read back from a stored spec.
struct AppliedLimits {
  std::optional<std::int64_t> memoryBytes;
  std::int64_t cpuShares = 0;
  std::optional<std::int64_t> nanoCpus;
};
AppliedLimits limitsOf(const nlohmann::json& spec);

// ["CMD", a...] -> a; ["CMD-SHELL", s] -> sh -c s; NONE or empty -> empty.
std::vector<std::string> probeArgs(const std::vector<std::string>& test);

// The health check rides along in the spec's annotations so that an agent that restarts
// (or another one) finds it again; these turn it into text and back.
std::string encodeHealthCheck(const HealthCheckSpec& check);
std::optional<HealthCheckSpec> decodeHealthCheck(const nlohmann::json& spec);

}  // namespace daemonlet::runtime::containerd
