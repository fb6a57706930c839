#pragma once
// Internal to runtime/containerd: image names as containerd stores them, and the chain ID
// that names an image's unpacked snapshot.
#include <string>
#include <string_view>
#include <vector>

namespace daemonlet::runtime::containerd {

// Docker's normalisation: "busybox" -> "docker.io/library/busybox:latest",
// "daemonlet/busybox:local" -> "docker.io/daemonlet/busybox:local".
std::string normalizeReference(std::string_view reference);

// ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
std::string chainId(const std::vector<std::string>& diffIds);

// "sha256:<hex>" of some bytes.
std::string sha256Digest(std::string_view bytes);

}  // namespace daemonlet::runtime::containerd
