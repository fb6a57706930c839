#pragma once
// The Runtime over Docker's Engine API on its unix socket (API 1.40 or newer).
#include <chrono>
#include <memory>
#include <string>

#include "runtime/Runtime.h"

namespace daemonlet::runtime {

class DockerRuntime final : public Runtime {
 public:
  struct Options {
    std::chrono::milliseconds callDeadline{30000};
    std::chrono::milliseconds pullDeadline{600000};
    std::chrono::milliseconds reconnectInitial{200};
    std::chrono::milliseconds reconnectMax{10000};
  };

  // `endpoint` is unix:///path/to/docker.sock (or a bare path).
  DockerRuntime(asio::any_io_executor executor, const std::string& endpoint, Options options);
  DockerRuntime(asio::any_io_executor executor, const std::string& endpoint);
  ~DockerRuntime() override;

  asio::awaitable<Result<EngineInfo>> version() override;
  asio::awaitable<Status> ensureImage(std::string image) override;
  asio::awaitable<Status> loadImage(std::string tarPath) override;
  asio::awaitable<Status> ensureNetwork(NetworkSpec spec) override;
  asio::awaitable<Result<std::string>> create(ContainerSpec spec) override;
  asio::awaitable<Status> start(std::string id) override;
  asio::awaitable<Status> stop(std::string id, std::chrono::seconds timeout) override;
  asio::awaitable<Status> kill(std::string id, int signal) override;
  // Removing a container that is already gone succeeds: the caller wanted it gone.
  asio::awaitable<Status> remove(std::string id) override;
  asio::awaitable<Result<ContainerInfo>> inspect(std::string id) override;
  asio::awaitable<Result<std::vector<ContainerInfo>>> list(LabelSelector selector) override;
  asio::awaitable<Result<VolumeInfo>> createVolume(VolumeSpec spec) override;
  asio::awaitable<Result<VolumeInfo>> inspectVolume(std::string name) override;
  asio::awaitable<Status> removeVolume(std::string name) override;
  asio::awaitable<Result<std::vector<VolumeInfo>>> listVolumes(LabelSelector selector) override;
  asio::awaitable<Result<std::vector<std::string>>> logDrivers() override;
  void watch(LabelSelector selector, EventHandlers handlers) override;
  void stopWatching() override;

  class Api;  // the protocol, shared with the watch loop so it outlives a call

 private:
  std::shared_ptr<Api> api_;
  struct Watch;
  std::shared_ptr<Watch> watch_;
  asio::any_io_executor executor_;
  Options options_;
};

}  // namespace daemonlet::runtime
