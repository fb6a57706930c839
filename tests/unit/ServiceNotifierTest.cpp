// The agent speaks systemd's notify protocol itself (no libsystemd): what a real
// datagram socket bound where NOTIFY_SOCKET points receives, as systemd would.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <catch2/catch.hpp>

#include "agent/host/ServiceNotifier.h"

using daemonlet::agent::ServiceNotifier;

namespace {

// A bound SOCK_DGRAM socket at `address` (a path, or "@name" for the abstract namespace).
struct NotifySocket {
  int fd = -1;
  explicit NotifySocket(const std::string& address) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, address.data(), address.size());
    if (a.sun_path[0] == '@') a.sun_path[0] = '\0';
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size())) == 0);
    timeval timeout{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~NotifySocket() { ::close(fd); }
  std::string receive() const {
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    return n < 0 ? std::string("(nothing)") : std::string(buffer, static_cast<std::size_t>(n));
  }
};

}  // namespace

TEST_CASE("the service notifier sends READY, STATUS, WATCHDOG and STOPPING datagrams to NOTIFY_SOCKET") {
  const std::string path = "/tmp/dl-notify-" + std::to_string(::getpid());
  const bool abstract = GENERATE(false, true);
  const std::string address = abstract ? "@" + path.substr(5) : path;
  ::unlink(path.c_str());
  NotifySocket socket(address);
  ::setenv("NOTIFY_SOCKET", address.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  {
    ServiceNotifier notifier;
    notifier.ready("1/1 critical daemons up");
    CHECK(socket.receive() == "READY=1\nSTATUS=1/1 critical daemons up");
    notifier.status("draining");
    CHECK(socket.receive() == "STATUS=draining");
    notifier.keepAlive();
    CHECK(socket.receive() == "WATCHDOG=1");
    notifier.stopping("stopped");
    CHECK(socket.receive() == "STOPPING=1\nSTATUS=stopped");
  }
  SECTION("a watchdog meant for another process is not fed") {
    ::setenv("WATCHDOG_PID", "1", 1);
    ServiceNotifier notifier;
    notifier.keepAlive();
    notifier.status("after");
    CHECK(socket.receive() == "STATUS=after");  // and no WATCHDOG=1 before it
  }
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  ::unlink(path.c_str());
}
