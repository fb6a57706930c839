#include "agent/host/ServiceNotifier.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace daemonlet::agent {

namespace {

// The notification protocol is one datagram to $NOTIFY_SOCKET (a path, or '@' for the
// abstract namespace), documented as stable in sd_notify(3). Sending it ourselves spares
// linking libsystemd, whose compression and crypto dependencies cost ~1.3 MiB of resident
// memory (issue 15).
void notify(std::string_view message) {
  const char* socketPath = std::getenv("NOTIFY_SOCKET");
  if (!socketPath || !*socketPath) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::size_t length = std::strlen(socketPath);
  if (length >= sizeof(address.sun_path) || (socketPath[0] != '/' && socketPath[0] != '@')) return;
  std::memcpy(address.sun_path, socketPath, length);
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&address),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length));
  ::close(fd);
}

// sd_watchdog_enabled(3): WATCHDOG_USEC, for this process when WATCHDOG_PID says so.
std::chrono::microseconds watchdogInterval() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (!usec) return std::chrono::microseconds(0);
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid && std::strtoll(pid, nullptr, 10) != ::getpid()) {
    return std::chrono::microseconds(0);
  }
  return std::chrono::microseconds(std::strtoull(usec, nullptr, 10));
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (enabled_) watchdog_ = watchdogInterval();
}

void ServiceNotifier::ready(const std::string& text) {
  if (!enabled_ || ready_) return;
  ready_ = true;
  lastStatus_ = text;
  notify("READY=1\nSTATUS=" + text);
}

void ServiceNotifier::status(const std::string& text) {
  if (!enabled_ || text == lastStatus_) return;
  lastStatus_ = text;
  notify("STATUS=" + text);
}

void ServiceNotifier::keepAlive() {
  if (!enabled_ || watchdog_.count() == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - lastPing_ < watchdog_ / 2) return;
  lastPing_ = now;
  notify("WATCHDOG=1");
}

void ServiceNotifier::stopping(const std::string& text) {
  if (!enabled_) return;
  notify("STOPPING=1\nSTATUS=" + text);
}

}  // namespace daemonlet::agent
