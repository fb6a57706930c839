#pragma once
// The directory source (DESIGN 3.4): reloads DIR/daemons and DIR/tasks when inotify says
// something changed, and every pollSeconds in any case. A bad file is reported once and
// its last good version keeps running (P6).
#include <functional>
#include <optional>
#include <string>

#include "agent/source/DesiredStateSource.h"
#include "agent/Logger.h"
#include "config/DesiredState.h"
#include "runtime/Asio.h"

namespace daemonlet::agent {

class DirectorySource final : public DesiredStateSource {
 public:
  DirectorySource(asio::any_io_executor executor, std::string path, std::chrono::seconds poll, Logger& log);
  ~DirectorySource() override;

  // Loads now and calls `onChange` whenever the desired state differs from the last one.
  // `lastGood` (the saved state) stands in for files that are broken at the first load.
  void start(Handler onChange, std::optional<VersionedDesiredState> lastGood) override;
  std::vector<std::string> problems() const override { return problems_; }

 private:
  void reload();
  void armInotify();
  // Watches the root, daemons/ and tasks/ as they are now: a tree swapped with mv has new
  // inodes, and the old watches see nothing of it.
  void watchDirectories();
  void armPoll();
  static std::string fingerprint(const config::DesiredState& state);

  asio::any_io_executor executor_;
  std::string path_;
  std::chrono::seconds poll_;
  Logger& log_;
  int inotify_ = -1;
  std::optional<asio::posix::stream_descriptor> events_;
  asio::steady_timer pollTimer_;
  asio::steady_timer settleTimer_;
  std::vector<char> buffer_;
  Shared state_ = std::make_shared<const VersionedDesiredState>();  // the last given
  bool loaded_ = false;
  std::string lastFingerprint_;
  std::string lastDiagnostics_;
  std::vector<std::string> problems_;
  Handler onChange_;
};

}  // namespace daemonlet::agent
