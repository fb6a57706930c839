#pragma once
// Log lines for operators: one line per event, to stderr as text or JSON with our own
// timestamp (a terminal, a file, a supervisor other than systemd), or, when stderr is the
// journal (systemd's JOURNAL_STREAM names its device and inode), natively to journald:
// a PRIORITY per line so that `journalctl -p warning` shows exactly the warnings, no
// second timestamp, and fields to select by (`journalctl DAEMONLET_FAMILY=node-monitor`).
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "config/AgentConfig.h"

struct iovec;

namespace daemonlet::agent {

// What a line is about, where known: journald fields DAEMONLET_FAMILY, DAEMONLET_TASK_ID
// and CONTAINER_ID (the engine's id, as Docker's own journald driver names it).
struct LogFields {
  std::string family;
  std::string taskId;
  std::string containerId;

  static LogFields daemon(std::string family) { return {std::move(family), {}, {}}; }
  static LogFields task(std::string family, std::string taskId) { return {std::move(family), std::move(taskId), {}}; }
};

// The call sites' vocabulary, shared by the logger and by a logger with fields attached.
template <class Sink>
class LogMethods {
 public:
  template <class... Args>
  void trace(fmt::format_string<Args...> f, Args&&... a) { log(config::LogLevel::Trace, f, std::forward<Args>(a)...); }
  template <class... Args>
  void debug(fmt::format_string<Args...> f, Args&&... a) { log(config::LogLevel::Debug, f, std::forward<Args>(a)...); }
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... a) { log(config::LogLevel::Info, f, std::forward<Args>(a)...); }
  template <class... Args>
  void warn(fmt::format_string<Args...> f, Args&&... a) { log(config::LogLevel::Warn, f, std::forward<Args>(a)...); }
  template <class... Args>
  void error(fmt::format_string<Args...> f, Args&&... a) { log(config::LogLevel::Error, f, std::forward<Args>(a)...); }
  // A line whose level is decided at run time.
  void at(config::LogLevel level, std::string_view message) {
    auto& sink = static_cast<Sink&>(*this);
    if (sink.enabled(level)) sink.write(level, message);
  }

 private:
  template <class... Args>
  void log(config::LogLevel level, fmt::format_string<Args...> f, Args&&... a) {
    auto& sink = static_cast<Sink&>(*this);
    if (sink.enabled(level)) sink.write(level, fmt::format(f, std::forward<Args>(a)...));
  }
};

class Logger;

class TaggedLogger : public LogMethods<TaggedLogger> {
 public:
  TaggedLogger(Logger& logger, LogFields fields) : logger_(logger), fields_(std::move(fields)) {}
  bool enabled(config::LogLevel level) const;
  void write(config::LogLevel level, std::string_view message);

 private:
  Logger& logger_;
  LogFields fields_;
};

class Logger : public LogMethods<Logger> {
 public:
  explicit Logger(std::ostream& out, config::LogLevel level = config::LogLevel::Info,
                  config::LogFormat format = config::LogFormat::Text)
      : out_(out), level_(level), format_(format) {}

  void configure(config::LogLevel level, config::LogFormat format) { level_ = level; format_ = format; }
  // From now on, lines go to journald natively instead of to the stream. libsystemd is
  // loaded here, only by agents whose stderr is the journal (SharedLibrary.h says why);
  // returns why not when it cannot be, and the lines keep going to the stream.
  std::optional<std::string> useJournal();
  bool enabled(config::LogLevel level) const { return level >= level_; }

  void write(config::LogLevel level, std::string_view message, const LogFields& fields = {});
  TaggedLogger about(LogFields fields) { return TaggedLogger(*this, std::move(fields)); }

 private:
  std::ostream& out_;
  config::LogLevel level_;
  config::LogFormat format_;
  int (*journalSend_)(const struct iovec* fields, int count) = nullptr;  // sd_journal_sendv
};

// True when JOURNAL_STREAM ("DEVICE:INODE", as systemd sets it) names the file `fd` is
// open on: stderr connected to the journal, not redirected by a drop-in or a shell.
bool isJournalStream(const char* journalStream, int fd);

// The journal entry for one line: MESSAGE, PRIORITY (syslog levels), SYSLOG_IDENTIFIER
// and the fields that are known, as "NAME=value" strings.
std::vector<std::string> journalEntry(config::LogLevel level, std::string_view message, const LogFields& fields);

}  // namespace daemonlet::agent
