#pragma once
// Holds the instance's shutdown while application tasks drain (DESIGN 5, P4): a logind
// *delay* inhibitor lock, taken at start; on PrepareForShutdown(true) the agent drains and
// then releases it; on PrepareForShutdown(false) (shutdown cancelled) it is taken again.
// Without logind (containers, debugging) the agent runs fine and says the hold is off.
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <systemd/sd-bus.h>

#include "agent/Logger.h"
#include "runtime/Asio.h"


namespace daemonlet::agent {

class ShutdownInhibitor {
 public:
  ShutdownInhibitor(asio::any_io_executor executor, Logger& log);
  ~ShutdownInhibitor();
  ShutdownInhibitor(const ShutdownInhibitor&) = delete;
  ShutdownInhibitor& operator=(const ShutdownInhibitor&) = delete;

  // Connects to the system bus, subscribes to PrepareForShutdown and takes the lock.
  // `onPrepare(true)` = shutdown starting, `onPrepare(false)` = cancelled. Returns false
  // (after logging why) when there is no logind to talk to.
  bool start(std::chrono::seconds drainTimeout, std::function<void(bool)> onPrepare);
  bool holding() const { return lockFd_ >= 0; }
  bool take();
  void release();

 private:
  static int onSignal(sd_bus_message* message, void* self, sd_bus_error* error);
  void armBus();

  asio::any_io_executor executor_;
  Logger& log_;
  sd_bus* bus_ = nullptr;
  sd_bus_slot* slot_ = nullptr;
  int lockFd_ = -1;
  std::optional<asio::posix::stream_descriptor> busFd_;
  std::function<void(bool)> onPrepare_;
};

}  // namespace daemonlet::agent
