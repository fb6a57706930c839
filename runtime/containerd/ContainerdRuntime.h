#pragma once
// The Runtime over containerd 1.6's v1 gRPC API on its unix socket, in one namespace of
// its own. containerd is a lower-level engine than Docker: this adapter builds the OCI
// spec, prepares snapshots, unpacks images, keeps container logs in files and runs health
// checks itself, so that the agent sees the same contract as on Docker.
//
// Calls are blocking gRPC calls made on a small pool of worker threads; their results are
// delivered on the caller's executor, and each has a deadline. The event watch has a
// thread of its own. Nothing here blocks the caller's thread except stopWatching() and
// the destructor, which wait for those threads to notice.
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "runtime/Runtime.h"
#include "runtime/containerd/RegistryHttp.h"

namespace daemonlet::runtime {

class ContainerdRuntime final : public Runtime {
 public:
  struct Options {
    std::string ns = "daemonlet";                           // containerd namespace; never another's
    std::string logDir = "/var/lib/daemonlet/containerd";  // <logDir>/<id>.log per container
    std::chrono::milliseconds callDeadline{30000};
    std::chrono::milliseconds pullDeadline{600000};
    std::chrono::milliseconds reconnectInitial{200};
    std::chrono::milliseconds reconnectMax{10000};
    int workers = 8;  // concurrent engine calls (a stop holds one for its grace period)
    // Registry pulls: HTTP from the caller (none: an image must be loaded first), hosts
    // (host:port) spoken to over plain http instead of verified https, and where
    // downloads are staged.
    HttpGet registryGet;
    std::set<std::string> insecureRegistries;
    std::string pullDir = "/var/lib/daemonlet/containerd-pull";
  };

  // `endpoint` is unix:///path/to/containerd.sock (or a bare path).
  ContainerdRuntime(asio::any_io_executor executor, const std::string& endpoint, Options options);
  ContainerdRuntime(asio::any_io_executor executor, const std::string& endpoint);
  ~ContainerdRuntime() override;

  asio::awaitable<Result<EngineInfo>> version() override;
  // Present and unpacked means done; present but not unpacked is unpacked; absent is
  // pulled from the registry its name says (registry API v2, anonymous bearer tokens).
  asio::awaitable<Status> ensureImage(std::string image) override;
  // A `docker save` or OCI archive: content written, images created, layers unpacked.
  asio::awaitable<Status> loadImage(std::string tarPath) override;
  // The container id is the spec's name (containerd ids are names).
  asio::awaitable<Result<std::string>> create(ContainerSpec spec) override;
  asio::awaitable<Status> start(std::string id) override;
  asio::awaitable<Status> stop(std::string id, std::chrono::seconds timeout) override;
  asio::awaitable<Status> kill(std::string id, int signal) override;
  // Task, container, snapshot and log; a container that is already gone succeeds.
  asio::awaitable<Status> remove(std::string id) override;
  asio::awaitable<Result<ContainerInfo>> inspect(std::string id) override;
  asio::awaitable<Result<std::vector<ContainerInfo>>> list(LabelSelector selector) override;
  // Named volumes and engine log drivers are Docker notions not built on containerd yet:
  // creating a volume is a clear Unsupported error, and there is never one to list.
  asio::awaitable<Result<VolumeInfo>> createVolume(VolumeSpec spec) override;
  asio::awaitable<Result<VolumeInfo>> inspectVolume(std::string name) override;
  asio::awaitable<Status> removeVolume(std::string name) override;
  asio::awaitable<Result<std::vector<VolumeInfo>>> listVolumes(LabelSelector selector) override;
  asio::awaitable<Result<std::vector<std::string>>> logDrivers() override;
  void watch(LabelSelector selector, EventHandlers handlers) override;
  void stopWatching() override;
  // Joins the worker threads: a call still waiting on containerd there hands its result to
  // the loop first (each has its deadline, runtime.callDeadline).
  void close() override;

  // Where a container's stdout and stderr go.
  std::string logPath(const std::string& id) const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace daemonlet::runtime
