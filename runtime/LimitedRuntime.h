#pragma once
// A Runtime that passes every call on to another, at most `limit` at a time (CallLimiter).
// The event watch is not a call: it runs beside them and is never queued.
#include "runtime/CallLimiter.h"
#include "runtime/Runtime.h"

namespace daemonlet::runtime {

class LimitedRuntime final : public Runtime {
 public:
  // dockerd and containerd serve a few calls at once well and hundreds badly (issue 15):
  // the agent's default is 8 (config runtime.maxCallsInFlight), what suits a small host.
  LimitedRuntime(asio::any_io_executor executor, RuntimePtr inner, std::size_t limit);

  const CallLimiter& limiter() const { return limiter_; }

  asio::awaitable<Result<EngineInfo>> version() override;
  asio::awaitable<Status> ensureImage(std::string image) override;
  asio::awaitable<Status> loadImage(std::string tarPath) override;
  asio::awaitable<Status> ensureNetwork(NetworkSpec spec) override;
  asio::awaitable<Result<std::string>> create(ContainerSpec spec) override;
  asio::awaitable<Status> start(std::string id) override;
  asio::awaitable<Status> stop(std::string id, std::chrono::seconds timeout) override;
  asio::awaitable<Status> kill(std::string id, int signal) override;
  asio::awaitable<Status> remove(std::string id) override;
  asio::awaitable<Result<ContainerInfo>> inspect(std::string id) override;
  asio::awaitable<Result<std::vector<ContainerInfo>>> list(LabelSelector selector) override;
  asio::awaitable<Result<VolumeInfo>> createVolume(VolumeSpec spec) override;
  asio::awaitable<Result<VolumeInfo>> inspectVolume(std::string name) override;
  asio::awaitable<Status> removeVolume(std::string name) override;
  asio::awaitable<Result<std::vector<VolumeInfo>>> listVolumes(LabelSelector selector) override;
  asio::awaitable<Result<std::vector<std::string>>> logDrivers() override;
  void watch(LabelSelector selector, EventHandlers handlers) override { inner_->watch(std::move(selector), std::move(handlers)); }
  void stopWatching() override { inner_->stopWatching(); }
  void close() override { inner_->close(); }

 private:
  template <class Call>
  auto limited(Call call) -> decltype(call());

  RuntimePtr inner_;
  CallLimiter limiter_;
};

}  // namespace daemonlet::runtime
