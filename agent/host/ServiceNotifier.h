#pragma once
// Tells systemd how the agent is doing (Type=notify): READY=1 once the slot gate opens,
// STATUS= lines for `systemctl status`, and watchdog keep-alives from the agent loop.
// Does nothing outside a notify-type unit.
#include <chrono>
#include <string>

namespace daemonlet::agent {

class ServiceNotifier {
 public:
  ServiceNotifier();

  void ready(const std::string& status);
  void status(const std::string& status);
  // Called from the agent loop; sends WATCHDOG=1 at half the unit's WatchdogSec.
  void keepAlive();
  void stopping(const std::string& status);

 private:
  bool enabled_ = false;
  bool ready_ = false;
  std::string lastStatus_;
  std::chrono::microseconds watchdog_{0};
  std::chrono::steady_clock::time_point lastPing_{};
};

}  // namespace daemonlet::agent
