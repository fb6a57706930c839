#include "agent/host/ShutdownInhibitor.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "agent/host/Libsystemd.h"

namespace daemonlet::agent {
namespace {

constexpr const char* kLogin = "org.freedesktop.login1";
constexpr const char* kPath = "/org/freedesktop/login1";
constexpr const char* kManager = "org.freedesktop.login1.Manager";

// Where sd_bus_open_system would connect (sd-bus(3)): without it there is no logind.
bool systemBusPresent() {
  return std::getenv("DBUS_SYSTEM_BUS_ADDRESS") != nullptr || ::access("/run/dbus/system_bus_socket", F_OK) == 0;
}

}  // namespace

ShutdownInhibitor::ShutdownInhibitor(asio::any_io_executor executor, Logger& log) : executor_(executor), log_(log) {}

ShutdownInhibitor::~ShutdownInhibitor() {
  release();
  if (busFd_) busFd_->release();  // sd-bus owns the descriptor
  if (!bus_) return;
  libsystemd().bus_slot_unref(slot_);
  libsystemd().bus_flush_close_unref(bus_);
}

bool ShutdownInhibitor::start(std::chrono::seconds drainTimeout, std::function<void(bool)> onPrepare) {
  onPrepare_ = std::move(onPrepare);
  if (!systemBusPresent()) {
    log_.warn("shutdown hold unavailable: no system bus; instance shutdown will not wait for the drain");
    return false;
  }
  const Libsystemd* sd = nullptr;
  try {
    sd = &libsystemd();
  } catch (const std::exception& e) {
    log_.warn("shutdown hold unavailable: {}; instance shutdown will not wait for the drain", e.what());
    return false;
  }
  int r = sd->bus_open_system(&bus_);
  if (r < 0) {
    log_.warn("shutdown hold unavailable: no system bus ({}); instance shutdown will not wait for the drain", strerror(-r));
    return false;
  }
  r = libsystemd().bus_match_signal(bus_, &slot_, kLogin, kPath, kManager, "PrepareForShutdown", &ShutdownInhibitor::onSignal, this);
  if (r < 0) {
    log_.warn("shutdown hold unavailable: cannot subscribe to logind ({})", strerror(-r));
    return false;
  }
  sd_bus_error error = SD_BUS_ERROR_NULL;
  uint64_t usec = 0;
  r = libsystemd().bus_get_property_trivial(bus_, kLogin, kPath, kManager, "InhibitDelayMaxUSec", &error, 't', &usec);
  libsystemd().bus_error_free(&error);
  if (r < 0) {
    log_.warn("shutdown hold unavailable: logind does not answer ({}); instance shutdown will not wait for the drain", strerror(-r));
    return false;
  }
  if (std::chrono::microseconds(usec) < drainTimeout) {
    log_.warn("logind InhibitDelayMaxSec is {} s, below shutdown.drainTimeoutSeconds ({} s): a shutdown will cut the drain short. "
              "Install zz-daemonlet-inhibit-delay.conf in logind.conf.d or check for a later-sorting drop-in that lowers it",
              usec / 1000000, drainTimeout.count());
  }
  if (!take()) return false;
  busFd_.emplace(executor_, libsystemd().bus_get_fd(bus_));
  armBus();
  log_.info("shutdown hold: logind delay lock taken (logind allows up to {} s)", usec / 1000000);
  return true;
}

bool ShutdownInhibitor::take() {
  if (lockFd_ >= 0 || !bus_) return lockFd_ >= 0;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = libsystemd().bus_call_method(bus_, kLogin, kPath, kManager, "Inhibit", &error, &reply, "ssss", "shutdown", "daemonlet",
                             "draining application tasks", "delay");
  if (r >= 0) {
    int fd = -1;
    r = libsystemd().bus_message_read(reply, "h", &fd);
    // The descriptor belongs to the reply: keep our own copy of it.
    if (r >= 0) lockFd_ = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  }
  if (r < 0 || lockFd_ < 0) {
    log_.warn("shutdown hold unavailable: Inhibit failed ({})", error.message ? error.message : strerror(-r));
  }
  libsystemd().bus_error_free(&error);
  libsystemd().bus_message_unref(reply);
  return lockFd_ >= 0;
}

void ShutdownInhibitor::release() {
  if (lockFd_ < 0) return;
  ::close(lockFd_);
  lockFd_ = -1;
  log_.info("shutdown hold released");
}

int ShutdownInhibitor::onSignal(sd_bus_message* message, void* self, sd_bus_error*) {
  auto* inhibitor = static_cast<ShutdownInhibitor*>(self);
  int starting = 0;
  if (libsystemd().bus_message_read(message, "b", &starting) < 0) return 0;
  if (inhibitor->onPrepare_) inhibitor->onPrepare_(starting != 0);
  return 0;
}

// sd-bus does its I/O when asked; ask whenever its socket has something for us.
void ShutdownInhibitor::armBus() {
  while (libsystemd().bus_process(bus_, nullptr) > 0) {
  }
  busFd_->async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
    if (!ec) armBus();
  });
}

}  // namespace daemonlet::agent
