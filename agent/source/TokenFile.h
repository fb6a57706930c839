#pragma once
// The control endpoint's bearer token (source.tokenFile), re-read whenever the file
// changes, so that a rotated token is used without a restart. The token never goes to a
// log: problems name the file, not its content.
#include <optional>
#include <string>

namespace daemonlet::agent {

class TokenFile {
 public:
  explicit TokenFile(std::string path) : path_(std::move(path)) {}
  bool configured() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  // The current token (the file's content, surrounding whitespace trimmed), or nullopt
  // with `problem` set: missing, unreadable, empty, or more than one line.
  std::optional<std::string> read(std::string& problem);

 private:
  std::string path_;
  std::string token_;
  std::string stamp_;  // mtime, size and inode of what token_ came from
};

}  // namespace daemonlet::agent
