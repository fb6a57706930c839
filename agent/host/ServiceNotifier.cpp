#include "agent/host/ServiceNotifier.h"

#include <cstdlib>

#include <systemd/sd-daemon.h>

namespace daemonlet::agent {

ServiceNotifier::ServiceNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds(usec);
}

void ServiceNotifier::ready(const std::string& text) {
  if (!enabled_ || ready_) return;
  ready_ = true;
  lastStatus_ = text;
  sd_notifyf(0, "READY=1\nSTATUS=%s", text.c_str());
}

void ServiceNotifier::status(const std::string& text) {
  if (!enabled_ || text == lastStatus_) return;
  lastStatus_ = text;
  sd_notifyf(0, "STATUS=%s", text.c_str());
}

void ServiceNotifier::keepAlive() {
  if (!enabled_ || watchdog_.count() == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - lastPing_ < watchdog_ / 2) return;
  lastPing_ = now;
  sd_notify(0, "WATCHDOG=1");
}

void ServiceNotifier::stopping(const std::string& text) {
  if (!enabled_) return;
  sd_notifyf(0, "STOPPING=1\nSTATUS=%s", text.c_str());
}

}  // namespace daemonlet::agent
