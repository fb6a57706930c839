#include "agent/source/DirectorySource.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <filesystem>

#include "config/DefinitionDirectory.h"

namespace daemonlet::agent {

DirectorySource::DirectorySource(asio::any_io_executor executor, std::string path, std::chrono::seconds poll, Logger& log)
    : executor_(executor), path_(std::move(path)), poll_(poll), log_(log), pollTimer_(executor), settleTimer_(executor), buffer_(16384) {}

DirectorySource::~DirectorySource() {
  if (events_) events_->close();  // closes inotify_
  else if (inotify_ >= 0) ::close(inotify_);
}

void DirectorySource::start(Handler onChange, std::optional<VersionedDesiredState> lastGood) {
  onChange_ = std::move(onChange);
  if (lastGood) {
    state_ = std::make_shared<const VersionedDesiredState>(VersionedDesiredState{std::move(lastGood->state), {}});
    loaded_ = true;  // the saved state is the last good one
    lastFingerprint_.clear();
  }
  inotify_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ >= 0) {
    events_.emplace(executor_, inotify_);
    armInotify();
  } else {
    log_.warn("definitions {}: inotify unavailable; rescanning every {} s", path_, poll_.count());
  }
  reload();
  armPoll();
}

void DirectorySource::watchDirectories() {
  if (inotify_ < 0) return;
  const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
  // The parent too, so that the root reappearing (mv defs.new defs) is seen at once.
  // lexically_normal + no trailing slash: the parent of "/defs/" is "/", not "/defs".
  std::string root = std::filesystem::path(path_).lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  const std::string parent = std::filesystem::path(root).parent_path().string();
  for (const std::string& dir : {parent, path_, path_ + "/daemons", path_ + "/tasks"}) ::inotify_add_watch(inotify_, dir.c_str(), mask);
}

void DirectorySource::armInotify() {
  events_->async_read_some(asio::buffer(buffer_), [this](const boost::system::error_code& ec, std::size_t) {
    if (ec) return;  // closed
    // Editors write in several steps: let them finish before reading.
    settleTimer_.expires_after(std::chrono::milliseconds(100));
    settleTimer_.async_wait([this](const boost::system::error_code& e) {
      if (!e) reload();
    });
    armInotify();
  });
}

void DirectorySource::armPoll() {
  pollTimer_.expires_after(poll_);
  pollTimer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    reload();
    armPoll();
  });
}

std::string DirectorySource::fingerprint(const config::DesiredState& state) {
  std::string out = config::toString(state.instanceStatus);
  for (const auto& d : state.daemons) out += "|d:" + d.family + ":" + d.hash;
  for (const auto& t : state.tasks) out += "|t:" + t.id + ":" + t.definition.hash;
  return out;
}

void DirectorySource::reload() {
  watchDirectories();
  auto load = config::loadDefinitionDirectory(path_, loaded_ ? &state_->state : nullptr);
  if (load.problems.empty() && !problems_.empty()) log_.info("definitions {}: readable again", path_);
  problems_ = load.problems;
  std::string diagnostics;
  for (const auto& d : load.diagnostics) diagnostics += d.format() + "\n";
  if (diagnostics != lastDiagnostics_) {  // say it once, not every poll
    for (const auto& d : load.diagnostics) {
      if (d.severity == config::Severity::Error) log_.error("{}", d.format());
      else log_.warn("{}", d.format());
    }
    lastDiagnostics_ = diagnostics;
  }
  const std::string print = fingerprint(load.state);
  if (loaded_ && print == lastFingerprint_) return;
  load.state.generation = state_->state.generation + 1;
  state_ = std::make_shared<const VersionedDesiredState>(VersionedDesiredState{std::move(load.state), {}});
  lastFingerprint_ = print;
  loaded_ = true;
  const config::DesiredState& state = state_->state;
  log_.info("definitions {}: {} daemon(s), {} task(s) (generation {})", path_, state.daemons.size(), state.tasks.size(), state.generation);
  if (onChange_) onChange_(state_);
}

}  // namespace daemonlet::agent
