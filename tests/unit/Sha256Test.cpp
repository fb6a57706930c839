// Our SHA-256 names every container (DESIGN 3.6): a wrong digest renames, and so
// restarts, everything after an upgrade. Checked against the FIPS 180-2 examples and
// against coreutils' sha256sum at every padding boundary.
#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "config/Sha256.h"

using daemonlet::config::sha256Hex;

namespace {

std::string sha256sum(const std::string& data) {
  char path[] = "/tmp/dl-sha256-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path, std::ios::binary) << data;
  FILE* pipe = ::popen(("sha256sum " + std::string(path)).c_str(), "r");
  REQUIRE(pipe);
  std::array<char, 65> hex{};
  REQUIRE(std::fread(hex.data(), 1, 64, pipe) == 64);
  ::pclose(pipe);
  std::remove(path);
  return std::string(hex.data(), 64);
}

}  // namespace

TEST_CASE("SHA-256 gives the published digests") {
  CHECK(sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256Hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("SHA-256 agrees with sha256sum on both sides of every padding boundary") {
  for (const std::size_t length : {1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000}) {
    std::string data;
    for (std::size_t i = 0; i < length; ++i) data += static_cast<char>((i * 131 + 7) & 0xff);  // every byte value, not only text
    INFO("length " << length);
    CHECK(sha256Hex(data) == sha256sum(data));
  }
}
