#pragma once
// Internal to runtime/containerd: the members of a tar file (docker save / OCI archive)
// by name, as byte ranges of the file, so that layers are streamed, never held in memory.
#include <cstdint>
#include <map>
#include <string>

#include "runtime/Result.h"

namespace daemonlet::runtime::containerd {

struct TarMember {
  std::uint64_t offset = 0;  // of the data in the file
  std::uint64_t size = 0;
};

// Regular files only; names without a leading "./". Understands ustar prefixes, PAX
// "path" records and GNU long names.
Result<std::map<std::string, TarMember>> readTarIndex(const std::string& path);

}  // namespace daemonlet::runtime::containerd
