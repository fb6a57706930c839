#include "agent/Logger.h"
#include "runtime/JsonText.h"

#include <chrono>

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

}  // namespace

void Logger::write(config::LogLevel level, std::string_view message) {
  if (format_ == config::LogFormat::Json) {
    nlohmann::json line = {{"time", timestamp()}, {"level", config::toString(level)}, {"msg", message}};
    out_ << jsonText(line) << '\n';
  } else {
    out_ << fmt::format("{} {:<5} {}\n", timestamp(), config::toString(level), message);
  }
  out_.flush();
}

}  // namespace daemonlet::agent
