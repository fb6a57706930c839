#include "agent/source/TokenFile.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace daemonlet::agent {

std::optional<std::string> TokenFile::read(std::string& problem) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    problem = fmt::format("source.tokenFile {}: {}", path_, std::strerror(errno));
    return std::nullopt;
  }
  const std::string stamp = fmt::format("{}.{}:{}:{}", st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_size, st.st_ino);
  if (stamp == stamp_) return token_;
  std::ifstream in(path_);
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  const auto first = content.find_first_not_of(" \t\r\n");
  const std::string token = first == std::string::npos ? "" : content.substr(first, content.find_last_not_of(" \t\r\n") - first + 1);
  if (!in || token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    problem = fmt::format("source.tokenFile {}: {}", path_, !in ? "cannot read it" : token.empty() ? "it is empty" : "it holds more than one line");
    return std::nullopt;
  }
  token_ = token;
  stamp_ = stamp;
  return token_;
}

}  // namespace daemonlet::agent
