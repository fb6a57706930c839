#include "runtime/containerd/ContainerdModule.h"

extern "C" daemonlet::runtime::RuntimePtr daemonlet_make_containerd_runtime(daemonlet::asio::any_io_executor executor, const std::string& endpoint,
                                                                            daemonlet::runtime::ContainerdRuntime::Options options) {
  return std::make_unique<daemonlet::runtime::ContainerdRuntime>(std::move(executor), endpoint, std::move(options));
}

static_assert(std::is_same_v<decltype(daemonlet_make_containerd_runtime), daemonlet::runtime::MakeContainerdRuntime>);
