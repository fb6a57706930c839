#pragma once
// The one interface every container engine adapter implements (DESIGN 2). All calls are
// coroutines on the caller's io_context; each has a deadline and returns an Error value
// rather than throwing.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/Asio.h"
#include "runtime/Container.h"
#include "runtime/Result.h"

namespace daemonlet::runtime {

// What an event watch delivers: single events as they happen, and after every
// (re)connection a full snapshot of the matching containers, so that a container that
// changed while the stream was down is never missed.
struct EventHandlers {
  std::function<void(const RuntimeEvent&)> onEvent;
  std::function<void(const std::vector<ContainerInfo>&)> onResync;
  std::function<void(const Error&)> onDisconnect;  // optional: stream lost, reconnecting
};

class Runtime {
 public:
  virtual ~Runtime() = default;

  virtual asio::awaitable<Result<EngineInfo>> version() = 0;
  // Present locally -> done; else pull; else an error naming the image.
  virtual asio::awaitable<Status> ensureImage(std::string image) = 0;
  virtual asio::awaitable<Status> loadImage(std::string tarPath) = 0;
  // The bridge network exists with this subnet (created when absent); a network of that
  // name with another subnet is a Conflict naming both. Adapters without networks say so.
  virtual asio::awaitable<Status> ensureNetwork(NetworkSpec spec) {
    co_return Error{Error::Code::Unsupported, "this runtime cannot create network " + spec.name};
  }
  // Returns the new container's id.
  virtual asio::awaitable<Result<std::string>> create(ContainerSpec spec) = 0;
  virtual asio::awaitable<Status> start(std::string id) = 0;
  // SIGTERM, then SIGKILL after `timeout`. Stopping a stopped container succeeds.
  virtual asio::awaitable<Status> stop(std::string id, std::chrono::seconds timeout) = 0;
  virtual asio::awaitable<Status> kill(std::string id, int signal) = 0;
  virtual asio::awaitable<Status> remove(std::string id) = 0;
  virtual asio::awaitable<Result<ContainerInfo>> inspect(std::string id) = 0;
  // Containers (running or not) whose labels match every pair of `selector`.
  virtual asio::awaitable<Result<std::vector<ContainerInfo>>> list(LabelSelector selector) = 0;
  // Creates a named volume; one that already exists with the same driver is returned as is.
  virtual asio::awaitable<Result<VolumeInfo>> createVolume(VolumeSpec spec) = 0;
  // NotFound when no volume has that name.
  virtual asio::awaitable<Result<VolumeInfo>> inspectVolume(std::string name) = 0;
  // Removing a volume that is gone succeeds; one a container still uses is a Conflict.
  virtual asio::awaitable<Status> removeVolume(std::string name) = 0;
  // Volumes whose labels match every pair of `selector`.
  virtual asio::awaitable<Result<std::vector<VolumeInfo>>> listVolumes(LabelSelector selector) = 0;
  // The log drivers containers can be created with here (e.g. json-file, journald).
  virtual asio::awaitable<Result<std::vector<std::string>>> logDrivers() = 0;
  // Starts watching until stopWatching() or destruction; reconnects with backoff.
  virtual void watch(LabelSelector selector, EventHandlers handlers) = 0;
  virtual void stopWatching() = 0;
  // For the way out, once the caller's loop has stopped for good: every call still under
  // way on a thread of the runtime's own has handed its result to the loop, and the watch
  // has ended, so that discarding the loop's pending work then ends each call's coroutine
  // while everything it refers to is still alive. No call is made after it.
  virtual void close() {}
};

using RuntimePtr = std::unique_ptr<Runtime>;

}  // namespace daemonlet::runtime
