#include "runtime/containerd/TarArchive.h"

#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace daemonlet::runtime::containerd {
namespace {

std::string field(const char* block, std::size_t offset, std::size_t length) {
  const char* start = block + offset;
  return std::string(start, strnlen(start, length));
}

std::uint64_t octal(const char* block, std::size_t offset, std::size_t length) {
  std::uint64_t value = 0;
  for (std::size_t i = offset; i < offset + length; ++i) {
    const char c = block[i];
    if (c >= '0' && c <= '7') value = value * 8 + static_cast<std::uint64_t>(c - '0');
    else if (c != ' ' && c != '\0') break;
  }
  return value;
}

std::string cleanName(std::string name) {
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  return name;
}

// "NN path=value\n" records.
std::string paxPath(const std::string& records) {
  for (std::size_t at = 0; at < records.size();) {
    const auto space = records.find(' ', at);
    if (space == std::string::npos) break;
    const std::size_t length = std::strtoull(records.c_str() + at, nullptr, 10);
    if (length == 0 || at + length > records.size()) break;
    const std::string record = records.substr(space + 1, at + length - space - 2);
    if (record.rfind("path=", 0) == 0) return record.substr(5);
    at += length;
  }
  return {};
}

}  // namespace

Result<std::map<std::string, TarMember>> readTarIndex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{Error::Code::NotFound, fmt::format("cannot read {}", path)};
  std::map<std::string, TarMember> members;
  std::string nextName;
  char block[512];
  std::uint64_t offset = 0;
  for (;;) {
    if (!in.read(block, sizeof block)) break;
    offset += 512;
    if (block[0] == '\0') break;  // end-of-archive blocks
    if (std::memcmp(block + 257, "ustar", 5) != 0 && members.empty() && nextName.empty())
      return Error{Error::Code::Protocol, fmt::format("{} is not a tar archive", path)};
    const std::uint64_t size = octal(block, 124, 12);
    const char type = block[156];
    const std::uint64_t padded = (size + 511) / 512 * 512;
    if (type == 'x' || type == 'L') {
      std::string data(size, '\0');
      if (!in.read(data.data(), static_cast<std::streamsize>(size))) break;
      in.seekg(static_cast<std::streamoff>(padded - size), std::ios::cur);
      nextName = type == 'L' ? std::string(data.c_str()) : paxPath(data);
      offset += padded;
      continue;
    }
    std::string name = field(block, 0, 100);
    const std::string prefix = field(block, 345, 155);
    if (!prefix.empty()) name = prefix + "/" + name;
    if (!nextName.empty()) name = nextName;
    nextName.clear();
    if (type == '0' || type == '\0') members[cleanName(name)] = {offset, size};
    in.seekg(static_cast<std::streamoff>(padded), std::ios::cur);
    offset += padded;
  }
  if (members.empty()) return Error{Error::Code::Protocol, fmt::format("{} is not a tar archive (no files in it)", path)};
  return members;
}

}  // namespace daemonlet::runtime::containerd
