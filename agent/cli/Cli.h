#pragma once
// The command line of DESIGN 3.1, parsed into values. Parsing never exits the process:
// the caller prints help or errors.
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace daemonlet::agent {

struct RunOptions {
  std::optional<std::string> config;  // --config; default /etc/daemonlet/config.yaml
  std::optional<std::string> source;  // DIR or http(s) URL
  std::optional<std::string> runtime;
  std::optional<std::string> runtimeEndpoint;
  std::optional<std::string> stateDir;
  std::optional<std::string> listen;
  std::optional<std::string> instanceId;
  std::optional<std::string> logLevel;
  std::optional<std::string> logFormat;
  bool once = false;
  bool dryRun = false;
  bool drainOnExit = false;
};

struct ValidateCommand {
  std::vector<std::string> files;
};

inline constexpr const char* kDefaultApiSocket = "/run/daemonlet/api.sock";

struct StatusCommand {
  std::string endpoint = kDefaultApiSocket;  // --socket PATH, or --listen HOST:PORT (read-only)
  bool json = false;
};

// Drain and undrain change the instance: only over the API socket (DESIGN 3.7).
struct DrainCommand {
  std::string socket = kDefaultApiSocket;
  bool wait = false;
  int timeoutSeconds = 0;  // 0 = no limit
};

struct UndrainCommand {
  std::string socket = kDefaultApiSocket;
};

struct VersionCommand {};

struct HelpRequest {
  std::string text;
};

struct UsageError {
  std::string message;
};

using Command = std::variant<RunOptions, ValidateCommand, StatusCommand, DrainCommand,
                             UndrainCommand, VersionCommand, HelpRequest, UsageError>;

Command parseCommandLine(const std::vector<std::string>& args);

std::string mainHelp();
std::string runHelp();

}  // namespace daemonlet::agent
