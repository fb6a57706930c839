#include "agent/host/ShutdownInhibitor.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include <systemd/sd-bus.h>

#include "agent/SharedLibrary.h"

namespace daemonlet::agent {
namespace {

constexpr const char* kLogin = "org.freedesktop.login1";
constexpr const char* kPath = "/org/freedesktop/login1";
constexpr const char* kManager = "org.freedesktop.login1.Manager";

// sd-bus, loaded only where a system bus exists (SharedLibrary.h says why).
struct SdBus {
  decltype(&sd_bus_open_system) open_system;
  decltype(&sd_bus_match_signal) match_signal;
  decltype(&sd_bus_get_property_trivial) get_property_trivial;
  decltype(&sd_bus_error_free) error_free;
  decltype(&sd_bus_call_method) call_method;
  decltype(&sd_bus_message_read) message_read;
  decltype(&sd_bus_message_unref) message_unref;
  decltype(&sd_bus_get_fd) get_fd;
  decltype(&sd_bus_process) process;
  decltype(&sd_bus_slot_unref) slot_unref;
  decltype(&sd_bus_flush_close_unref) flush_close_unref;
};

const SdBus& sdBus() {
  static const SdBus table = [] {
    const SharedLibrary library("libsystemd.so.0", "libsystemd0");
    SdBus b{};
    library.bind(b.open_system, "sd_bus_open_system");
    library.bind(b.match_signal, "sd_bus_match_signal");
    library.bind(b.get_property_trivial, "sd_bus_get_property_trivial");
    library.bind(b.error_free, "sd_bus_error_free");
    library.bind(b.call_method, "sd_bus_call_method");
    library.bind(b.message_read, "sd_bus_message_read");
    library.bind(b.message_unref, "sd_bus_message_unref");
    library.bind(b.get_fd, "sd_bus_get_fd");
    library.bind(b.process, "sd_bus_process");
    library.bind(b.slot_unref, "sd_bus_slot_unref");
    library.bind(b.flush_close_unref, "sd_bus_flush_close_unref");
    return b;
  }();
  return table;
}

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
  sdBus().slot_unref(slot_);
  sdBus().flush_close_unref(bus_);
}

bool ShutdownInhibitor::start(std::chrono::seconds drainTimeout, std::function<void(bool)> onPrepare) {
  onPrepare_ = std::move(onPrepare);
  if (!systemBusPresent()) {
    log_.warn("shutdown hold unavailable: no system bus; instance shutdown will not wait for the drain");
    return false;
  }
  const SdBus* sd = nullptr;
  try {
    sd = &sdBus();
  } catch (const std::exception& e) {
    log_.warn("shutdown hold unavailable: {}; instance shutdown will not wait for the drain", e.what());
    return false;
  }
  int r = sd->open_system(&bus_);
  if (r < 0) {
    log_.warn("shutdown hold unavailable: no system bus ({}); instance shutdown will not wait for the drain", strerror(-r));
    return false;
  }
  r = sdBus().match_signal(bus_, &slot_, kLogin, kPath, kManager, "PrepareForShutdown", &ShutdownInhibitor::onSignal, this);
  if (r < 0) {
    log_.warn("shutdown hold unavailable: cannot subscribe to logind ({})", strerror(-r));
    return false;
  }
  sd_bus_error error = SD_BUS_ERROR_NULL;
  uint64_t usec = 0;
  r = sdBus().get_property_trivial(bus_, kLogin, kPath, kManager, "InhibitDelayMaxUSec", &error, 't', &usec);
  sdBus().error_free(&error);
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
  busFd_.emplace(executor_, sdBus().get_fd(bus_));
  armBus();
  log_.info("shutdown hold: logind delay lock taken (logind allows up to {} s)", usec / 1000000);
  return true;
}

bool ShutdownInhibitor::take() {
  if (lockFd_ >= 0 || !bus_) return lockFd_ >= 0;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sdBus().call_method(bus_, kLogin, kPath, kManager, "Inhibit", &error, &reply, "ssss", "shutdown", "daemonlet",
                             "draining application tasks", "delay");
  if (r >= 0) {
    int fd = -1;
    r = sdBus().message_read(reply, "h", &fd);
    // The descriptor belongs to the reply: keep our own copy of it.
    if (r >= 0) lockFd_ = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  }
  if (r < 0 || lockFd_ < 0) {
    log_.warn("shutdown hold unavailable: Inhibit failed ({})", error.message ? error.message : strerror(-r));
  }
  sdBus().error_free(&error);
  sdBus().message_unref(reply);
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
  if (sdBus().message_read(message, "b", &starting) < 0) return 0;
  if (inhibitor->onPrepare_) inhibitor->onPrepare_(starting != 0);
  return 0;
}

// sd-bus does its I/O when asked; ask whenever its socket has something for us.
void ShutdownInhibitor::armBus() {
  while (sdBus().process(bus_, nullptr) > 0) {
  }
  busFd_->async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
    if (!ec) armBus();
  });
}

}  // namespace daemonlet::agent
