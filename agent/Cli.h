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

struct StatusCommand {
  std::string listen = "127.0.0.1:51680";
  bool json = false;
};

struct DrainCommand {
  std::string listen = "127.0.0.1:51680";
  bool wait = false;
  int timeoutSeconds = 0;  // 0 = no limit
};

struct UndrainCommand {
  std::string listen = "127.0.0.1:51680";
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
