#include "runtime/containerd/ImageReference.h"

#include <openssl/sha.h>

#include <fmt/format.h>

namespace daemonlet::runtime::containerd {

std::string normalizeReference(std::string_view reference) {
  std::string ref(reference);
  const auto slash = ref.find('/');
  // A first component with a dot or colon, or "localhost", is a registry host.
  const std::string first = slash == std::string::npos ? "" : ref.substr(0, slash);
  const bool hasDomain = !first.empty() && (first.find_first_of(".:") != std::string::npos || first == "localhost");
  if (!hasDomain) ref = (slash == std::string::npos ? "docker.io/library/" : "docker.io/") + ref;
  if (ref.find('@') != std::string::npos) return ref;
  const auto lastSlash = ref.rfind('/');
  if (ref.find(':', lastSlash) == std::string::npos) ref += ":latest";
  return ref;
}

std::string sha256Digest(std::string_view bytes) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out);
  std::string hex = "sha256:";
  for (unsigned char c : out) hex += fmt::format("{:02x}", c);
  return hex;
}

std::string chainId(const std::vector<std::string>& diffIds) {
  std::string chain;
  for (const auto& diff : diffIds) chain = chain.empty() ? diff : sha256Digest(chain + " " + diff);
  return chain;
}

}  // namespace daemonlet::runtime::containerd
