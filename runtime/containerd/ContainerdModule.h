#pragma once
// The containerd adapter is a module of its own, libdaemonlet-containerd.so, that the agent
// opens only with --runtime containerd (issue 15): linked in, gRPC, protobuf, abseil and
// c-ares were mapped and initialised by every agent, Docker ones included. The agent
// exports its symbols (ENABLE_EXPORTS), so the module shares its Asio and its
// io_context's services rather than carrying copies of them.
#include <string>

#include "runtime/containerd/ContainerdRuntime.h"

namespace daemonlet::runtime {

inline constexpr const char* kContainerdModuleFile = "libdaemonlet-containerd.so";
inline constexpr const char* kMakeContainerdRuntimeSymbol = "daemonlet_make_containerd_runtime";

// What the module's entry point is: the adapter's constructor, behind one C name.
using MakeContainerdRuntime = RuntimePtr(asio::any_io_executor executor, const std::string& endpoint, ContainerdRuntime::Options options);

}  // namespace daemonlet::runtime
