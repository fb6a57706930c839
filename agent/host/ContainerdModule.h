#pragma once
// Opens the containerd adapter's module (runtime/containerd/ContainerdModule.h) and makes
// the adapter. Looked for beside the binary (a build tree), then in ../lib/daemonlet
// (/usr/bin/daemonlet -> /usr/lib/daemonlet, where the package installs it).
#include <string>

#include "runtime/containerd/ContainerdModule.h"

namespace daemonlet::agent {

// Throws std::runtime_error naming every place looked in and why it failed there.
runtime::RuntimePtr loadContainerdRuntime(asio::any_io_executor executor, const std::string& endpoint,
                                          runtime::ContainerdRuntime::Options options);

}  // namespace daemonlet::agent
