#pragma once
// Log lines for operators: one line per event, text or JSON, to stderr (journald adds
// the timestamp under systemd, but a plain terminal needs it too).
#include <ostream>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "config/AgentConfig.h"

namespace daemonlet::agent {

class Logger {
 public:
  explicit Logger(std::ostream& out, config::LogLevel level = config::LogLevel::Info,
                  config::LogFormat format = config::LogFormat::Text)
      : out_(out), level_(level), format_(format) {}

  void configure(config::LogLevel level, config::LogFormat format) { level_ = level; format_ = format; }
  bool enabled(config::LogLevel level) const { return level >= level_; }

  void write(config::LogLevel level, std::string_view message);

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

 private:
  template <class... Args>
  void log(config::LogLevel level, fmt::format_string<Args...> f, Args&&... a) {
    if (enabled(level)) write(level, fmt::format(f, std::forward<Args>(a)...));
  }

  std::ostream& out_;
  config::LogLevel level_;
  config::LogFormat format_;
};

}  // namespace daemonlet::agent
