#pragma once
// Which engine the contract suite runs against: DAEMONLET_TEST_RUNTIME=docker (default)
// or containerd, at DAEMONLET_TEST_ENDPOINT (default: the engine's usual socket).
// The suite only sees runtime::Runtime, so every adapter is held to the same contract.
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "runtime/containerd/ContainerdRuntime.h"
#include "runtime/docker/DockerRuntime.h"

namespace daemonlet::test {

inline constexpr const char* kTestImage = "daemonlet/busybox:local";

inline std::string runtimeUnderTestName() {
  const char* name = std::getenv("DAEMONLET_TEST_RUNTIME");
  return name && *name ? name : "docker";
}

inline std::string runtimeUnderTestEndpoint() {
  if (const char* e = std::getenv("DAEMONLET_TEST_ENDPOINT"); e && *e) return e;
  return runtimeUnderTestName() == "docker" ? "unix:///var/run/docker.sock" : "unix:///run/containerd/containerd.sock";
}

inline runtime::RuntimePtr makeRuntimeUnderTest(asio::any_io_executor executor, const std::string& endpoint) {
  if (runtimeUnderTestName() == "docker") return std::make_unique<runtime::DockerRuntime>(executor, endpoint);
  if (runtimeUnderTestName() == "containerd") {
    runtime::ContainerdRuntime::Options options;
    options.logDir = "/tmp/daemonlet-test-containerd-logs";
    return std::make_unique<runtime::ContainerdRuntime>(executor, endpoint, options);
  }
  throw std::runtime_error("DAEMONLET_TEST_RUNTIME=" + runtimeUnderTestName() + ": no such adapter");
}

}  // namespace daemonlet::test
