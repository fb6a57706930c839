#pragma once
// SHA-256 (FIPS 180-4), for the definition hashes in labels and container names
// (DESIGN 3.6). Our own few lines instead of libcrypto: linking OpenSSL for one digest
// cost the agent 3.4 MiB of resident memory (issue 15).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace daemonlet::config {

std::array<std::uint8_t, 32> sha256(std::string_view data);

// Lowercase hex SHA-256.
std::string sha256Hex(std::string_view data);

}  // namespace daemonlet::config
