#include "agent/Logger.h"
#include "agent/SharedLibrary.h"
#include "runtime/JsonText.h"

#include <chrono>
#include <cstdio>

#include <sys/stat.h>
#include <sys/uio.h>

#include <nlohmann/json.hpp>

namespace daemonlet::agent {
namespace {

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

// syslog(3) levels, as journalctl -p reads them.
int priority(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::Trace:
    case config::LogLevel::Debug: return 7;
    case config::LogLevel::Info: return 6;
    case config::LogLevel::Warn: return 4;
    case config::LogLevel::Error: return 3;
  }
  return 6;
}

}  // namespace

bool TaggedLogger::enabled(config::LogLevel level) const { return logger_.enabled(level); }
void TaggedLogger::write(config::LogLevel level, std::string_view message) { logger_.write(level, message, fields_); }

std::vector<std::string> journalEntry(config::LogLevel level, std::string_view message, const LogFields& fields) {
  std::vector<std::string> entry{fmt::format("MESSAGE={}", message), fmt::format("PRIORITY={}", priority(level)),
                                 "SYSLOG_IDENTIFIER=daemonlet"};
  if (!fields.family.empty()) entry.push_back("DAEMONLET_FAMILY=" + fields.family);
  if (!fields.taskId.empty()) entry.push_back("DAEMONLET_TASK_ID=" + fields.taskId);
  if (!fields.containerId.empty()) entry.push_back("CONTAINER_ID=" + fields.containerId);
  return entry;
}

bool isJournalStream(const char* journalStream, int fd) {
  if (!journalStream) return false;
  unsigned long long device = 0, inode = 0;
  char rest = 0;
  if (std::sscanf(journalStream, "%llu:%llu%c", &device, &inode, &rest) != 2) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device && static_cast<unsigned long long>(st.st_ino) == inode;
}

std::optional<std::string> Logger::useJournal() {
  try {
    // The plain symbol, not the header's macro around sd_journal_sendv_with_location:
    // CODE_FILE=../../agent/Logger.cpp on every entry would say nothing.
    const SharedLibrary library("libsystemd.so.0", "libsystemd0");
    library.bind(journalSend_, "sd_journal_sendv");
    return std::nullopt;
  } catch (const std::exception& e) {
    return e.what();
  }
}

void Logger::write(config::LogLevel level, std::string_view message, const LogFields& fields) {
  if (journalSend_) {
    const auto entry = journalEntry(level, message, fields);
    std::vector<iovec> iov;
    for (const auto& field : entry) iov.push_back({const_cast<char*>(field.data()), field.size()});
    if (journalSend_(iov.data(), static_cast<int>(iov.size())) == 0) return;
    // journald gone (restarting, or stopped at shutdown): the stream still reaches someone.
  }
  if (format_ == config::LogFormat::Json) {
    nlohmann::json line = {{"time", timestamp()}, {"level", config::toString(level)}, {"msg", message}};
    if (!fields.family.empty()) line["family"] = fields.family;
    if (!fields.taskId.empty()) line["taskId"] = fields.taskId;
    if (!fields.containerId.empty()) line["containerId"] = fields.containerId;
    out_ << jsonText(line) << '\n';
  } else {
    out_ << fmt::format("{} {:<5} {}\n", timestamp(), config::toString(level), message);
  }
  out_.flush();
}

}  // namespace daemonlet::agent
