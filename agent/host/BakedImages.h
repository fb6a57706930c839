#pragma once
// Images baked into an instance image (packaging/bake): archives in stateDir/images/*.tar,
// as `docker save` writes them, loaded into the runtime at the agent's first start on
// that machine, before any daemon is created, so that a baked instance starts its daemons
// without a registry. Each archive is loaded once per runtime (a marker NAME.tar.loaded
// lists the runtimes that have it), so later starts cost nothing and a switch from Docker
// to containerd loads them again. A failed load is a warning: the image may still be
// pulled, and the daemon's own error says so if not.
#include <filesystem>
#include <string>

#include "agent/Logger.h"
#include "runtime/Asio.h"
#include "runtime/Runtime.h"

namespace daemonlet::agent {

// `runtimeKey` names the runtime the images go to ("docker unix:///var/run/docker.sock").
// Returns how many archives were loaded now.
asio::awaitable<int> loadBakedImages(runtime::Runtime& runtime, std::filesystem::path directory, std::string runtimeKey, Logger& log);

}  // namespace daemonlet::agent
