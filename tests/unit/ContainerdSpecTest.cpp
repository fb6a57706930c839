// The containerd adapter's pure parts: OCI specs built from a ContainerSpec, image
// references and chain IDs, and the tar index image import reads.
#include <cstdlib>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runtime/containerd/ImageReference.h"
#include "runtime/containerd/OciSpec.h"
#include "runtime/containerd/TarArchive.h"
#include "support/TempDir.h"

using namespace daemonlet::runtime;
using namespace daemonlet::runtime::containerd;
using nlohmann::json;

namespace {

ImageConfig busybox() {
  ImageConfig c;
  c.env = {"PATH=/bin", "LANG=C"};
  c.cmd = {"sh"};
  c.diffIds = {"sha256:aa"};
  return c;
}

ContainerSpec basic() {
  ContainerSpec s;
  s.name = "web";
  s.image = "daemonlet/busybox:local";
  s.networkMode = "none";
  return s;
}

bool hasMount(const json& spec, const std::string& destination) {
  for (const auto& m : spec["mounts"]) if (m["destination"] == destination) return true;
  return false;
}

}  // namespace

TEST_CASE("containerd spec: containerd's client defaults, and the image's command and env") {
  auto spec = buildSpec(basic(), busybox(), {"/daemonlet/web", "web"});
  REQUIRE(spec.ok());
  const json& s = spec.value();
  CHECK(s["root"]["path"] == "rootfs");
  CHECK(s["process"]["args"] == json({"sh"}));
  CHECK(s["process"]["env"] == json({"PATH=/bin", "LANG=C"}));
  CHECK(s["process"]["cwd"] == "/");
  CHECK(s["process"]["capabilities"]["bounding"].size() == 14);
  CHECK(s["process"]["rlimits"][0]["type"] == "RLIMIT_NOFILE");
  CHECK(s["linux"]["cgroupsPath"] == "/daemonlet/web");
  for (const char* m : {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run", "/sys/fs/cgroup"}) CHECK(hasMount(s, m));
  std::vector<std::string> namespaces;
  for (const auto& n : s["linux"]["namespaces"]) namespaces.push_back(n["type"]);
  CHECK(namespaces.size() == 5);  // pid, ipc, uts, mount, network
  CHECK(s["linux"]["maskedPaths"].size() > 0);
}

TEST_CASE("containerd spec: the definition overrides the image as Docker does") {
  auto s = basic();
  s.entrypoint = {"/bin/sh", "-c"};
  s.env = {"LANG=de_DE", "X=1"};
  s.user = "1000:1000";
  s.workingDir = "/tmp";
  auto spec = buildSpec(s, busybox(), {"/daemonlet/web", "web"});
  REQUIRE(spec.ok());
  CHECK(spec.value()["process"]["args"] == json({"/bin/sh", "-c"}));  // an entrypoint drops the image's CMD
  CHECK(spec.value()["process"]["env"] == json({"PATH=/bin", "LANG=de_DE", "X=1"}));
  CHECK(spec.value()["process"]["user"]["uid"] == 1000);
  CHECK(spec.value()["process"]["cwd"] == "/tmp");
}

TEST_CASE("containerd spec: limits, and reading them back") {
  auto s = basic();
  s.memoryBytes = 64 << 20;
  s.memoryReservationBytes = 32 << 20;
  s.cpuShares = 512;
  s.nanoCpus = 500'000'000;
  auto spec = buildSpec(s, busybox(), {"/daemonlet/web", "web"});
  REQUIRE(spec.ok());
  CHECK(spec.value()["linux"]["resources"]["memory"]["reservation"] == 32 << 20);
  auto limits = limitsOf(spec.value());
  CHECK(limits.memoryBytes == 64 << 20);
  CHECK(limits.cpuShares == 512);
  CHECK(limits.nanoCpus == 500'000'000);
}

TEST_CASE("containerd spec: capabilities, privileged, read-only root, host network, mounts") {
  auto s = basic();
  s.capAdd = {"NET_ADMIN"};
  s.capDrop = {"MKNOD"};
  s.readOnlyRootfs = true;
  s.networkMode = "host";
  s.mounts = {{Mount::Type::Bind, "/srv", "/data", true, 0, {}}, {Mount::Type::Tmpfs, "", "/scratch", false, 1 << 20, {}}};
  auto spec = buildSpec(s, busybox(), {"/daemonlet/web", "web"});
  REQUIRE(spec.ok());
  const auto caps = spec.value()["process"]["capabilities"]["bounding"];
  CHECK(std::find(caps.begin(), caps.end(), "CAP_NET_ADMIN") != caps.end());
  CHECK(std::find(caps.begin(), caps.end(), "CAP_MKNOD") == caps.end());
  CHECK(spec.value()["root"]["readonly"] == true);
  for (const auto& n : spec.value()["linux"]["namespaces"]) CHECK(n["type"] != "network");
  CHECK(hasMount(spec.value(), "/etc/resolv.conf"));
  CHECK(hasMount(spec.value(), "/data"));
  CHECK(hasMount(spec.value(), "/scratch"));

  s.privileged = true;
  auto privileged = buildSpec(s, busybox(), {"/daemonlet/web", "web"});
  REQUIRE(privileged.ok());
  CHECK(privileged.value()["process"]["capabilities"]["bounding"].size() > 30);
  CHECK_FALSE(privileged.value()["linux"].contains("maskedPaths"));
}

TEST_CASE("containerd spec: what the adapter cannot do yet is a clear Unsupported error") {
  auto bridge = basic();
  bridge.networkMode = "bridge";
  auto r = buildSpec(bridge, busybox(), {"/daemonlet/web", "web"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::Unsupported);
  CHECK(r.error().message.find("bridge") != std::string::npos);
  auto named = basic();
  named.user = "nobody";
  auto u = buildSpec(named, busybox(), {"/daemonlet/web", "web"});
  REQUIRE_FALSE(u.ok());
  CHECK(u.error().message.find("nobody") != std::string::npos);
}

TEST_CASE("containerd spec: the health check travels in the spec's annotations") {
  auto s = basic();
  s.healthCheck = HealthCheckSpec{{"CMD-SHELL", "test -f /ok"}, std::chrono::milliseconds(500), std::chrono::milliseconds(1000),
                                  std::chrono::milliseconds(2000), 2};
  auto spec = buildSpec(s, busybox(), {"/daemonlet/web", "web"});
  REQUIRE(spec.ok());
  auto back = decodeHealthCheck(spec.value());
  REQUIRE(back);
  CHECK(back->interval.count() == 500);
  CHECK(back->startPeriod.count() == 2000);
  CHECK(back->retries == 2);
  CHECK(probeArgs(back->test) == std::vector<std::string>{"/bin/sh", "-c", "test -f /ok"});
  CHECK(probeArgs({"CMD", "true"}) == std::vector<std::string>{"true"});
  CHECK(probeArgs({"NONE"}).empty());
}

TEST_CASE("containerd images: references are normalised as Docker does, chain IDs as the OCI spec says") {
  CHECK(normalizeReference("busybox") == "docker.io/library/busybox:latest");
  CHECK(normalizeReference("daemonlet/busybox:local") == "docker.io/daemonlet/busybox:local");
  CHECK(normalizeReference("localhost:5000/a/b") == "localhost:5000/a/b:latest");
  CHECK(normalizeReference("registry.example.com/x@sha256:ab") == "registry.example.com/x@sha256:ab");
  CHECK(chainId({"sha256:a"}) == "sha256:a");
  CHECK(chainId({"sha256:a", "sha256:b"}) == sha256Digest("sha256:a sha256:b"));
  CHECK(sha256Digest("") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("containerd images: a tar's members are found by name, with their byte ranges") {
  daemonlet::test::TempDir dir;
  const std::string root = dir.path.string() + "/root";
  REQUIRE(std::system(("mkdir -p " + root + "/blobs/sha256 && printf hello >" + root + "/manifest.json && printf abc >" + root +
                       "/blobs/sha256/x && tar -C " + root + " -cf " + dir.path.string() + "/a.tar .").c_str()) == 0);
  auto index = readTarIndex(dir.path.string() + "/a.tar");
  REQUIRE(index.ok());
  REQUIRE(index->count("manifest.json"));
  CHECK(index->at("manifest.json").size == 5);
  CHECK(index->at("blobs/sha256/x").size == 3);
  auto notTar = readTarIndex(root + "/manifest.json");
  CHECK_FALSE(notTar.ok());
}
