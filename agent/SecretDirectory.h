#pragma once
// The local secrets provider of DESIGN 3.3: the value an ECS `valueFrom` names is the
// content of one file in `secrets.directory`. Secret values stay in memory and go only
// where the definition sends them; no message this class makes ever holds one.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/Result.h"

namespace daemonlet::agent {

// Which file, and which key of a JSON file, a `valueFrom` names: the last `:`- or
// `/`-separated part of an SSM parameter name or ARN, or for a Secrets Manager ARN
// `arn:...:secret:NAME[:KEY[:STAGE[:VERSION]]]` the NAME, with KEY picked from its JSON.
struct SecretReference {
  std::string file;
  std::optional<std::string> jsonKey;
};

// nullopt when nothing usable as a file name is left (empty, ".", "..").
std::optional<SecretReference> parseSecretReference(std::string_view valueFrom);

class SecretDirectory {
 public:
  explicit SecretDirectory(std::filesystem::path directory) : directory_(std::move(directory)) {}

  const std::filesystem::path& directory() const { return directory_; }

  // The value of secret `name` (the definition's name for it, for the message). One
  // trailing newline is dropped, as `echo value > file` writes one. NotFound when the
  // file or key is missing; the error says which file, never what is in it.
  runtime::Result<std::string> resolve(const std::string& name, const std::string& valueFrom) const;

 private:
  std::filesystem::path directory_;
};

}  // namespace daemonlet::agent
