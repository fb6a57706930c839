#include "agent/cli/Cli.h"

#include <charconv>
#include <functional>
#include <map>

#include <fmt/format.h>

namespace daemonlet::agent {
namespace {

// Flags of one subcommand: a name maps to a setter taking the value (or nothing).
struct FlagSpec {
  bool takesValue;
  std::function<bool(const std::string&)> apply;  // false = bad value
};

std::optional<UsageError> parseFlags(const std::string& command, const std::vector<std::string>& args,
                                     std::size_t first, const std::map<std::string, FlagSpec>& flags,
                                     std::vector<std::string>* positional) {
  for (std::size_t i = first; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      if (positional && arg != "--") {
        positional->push_back(arg);
        continue;
      }
      if (positional && arg == "--") {
        positional->insert(positional->end(), args.begin() + static_cast<long>(i) + 1, args.end());
        return std::nullopt;
      }
      return UsageError{fmt::format("daemonlet {}: unexpected argument '{}'", command, arg)};
    }
    std::optional<std::string> value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto it = flags.find(arg);
    if (it == flags.end()) return UsageError{fmt::format("daemonlet {}: unknown flag '{}' (see 'daemonlet {} --help')", command, arg, command)};
    if (it->second.takesValue && !value) {
      if (i + 1 >= args.size()) return UsageError{fmt::format("daemonlet {}: {} needs a value", command, arg)};
      value = args[++i];
    }
    if (!it->second.takesValue && value) return UsageError{fmt::format("daemonlet {}: {} takes no value", command, arg)};
    if (!it->second.apply(value.value_or(""))) return UsageError{fmt::format("daemonlet {}: bad value '{}' for {}", command, *value, arg)};
  }
  return std::nullopt;
}

auto into(std::optional<std::string>& target) {
  return FlagSpec{true, [&target](const std::string& v) { target = v; return !v.empty(); }};
}
auto into(std::string& target) {
  return FlagSpec{true, [&target](const std::string& v) { target = v; return !v.empty(); }};
}
auto set(bool& target) {
  return FlagSpec{false, [&target](const std::string&) { target = true; return true; }};
}
auto oneOf(std::optional<std::string>& target, std::vector<std::string> allowed) {
  return FlagSpec{true, [&target, allowed](const std::string& v) {
    target = v;
    return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
  }};
}

bool wantsHelp(const std::vector<std::string>& args, std::size_t first) {
  for (std::size_t i = first; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") return true;
  }
  return false;
}

}  // namespace

std::string mainHelp() {
  return R"(daemonlet: runs a host's managed daemons and application tasks in containers.

Usage:
  daemonlet run      [flags]              run the agent (see 'daemonlet run --help')
  daemonlet validate FILE|DIR...          check task definitions or agent config files;
                                          prints FILE:LINE:COL: message, exits 1 on error
  daemonlet status   [--socket PATH | --listen HOST:PORT] [--json]
                                          phase, daemons, tasks and capacity of a running agent
  daemonlet drain    [--socket PATH] [--wait] [--timeout SECONDS]
                                          stop admitting and stop application tasks
  daemonlet undrain  [--socket PATH]      admit application tasks again after a drain

status, drain and undrain talk to the agent's API socket (apiSocket, default
/run/daemonlet/api.sock: root and the daemonlet group). The TCP listener is read-only.
  daemonlet version                       print the version

Exit codes: 0 success, 1 failure (invalid input, not converged), 2 usage error.
)";
}

std::string runHelp() {
  return R"(Usage: daemonlet run [flags]

Flags override the config file; the config file overrides built-in defaults.
  --config PATH              agent config (default /etc/daemonlet/config.yaml, plus
                             config.d/*.yaml beside it); built-in defaults when absent
  --source DIR|URL           definitions directory, or http(s) base URL of a control
                             endpoint (docs/control-protocol.md; TLS, token and mTLS
                             settings come from the config's source section)
  --runtime docker|containerd
                             engine to run containers on (default docker); containerd
                             loads /usr/lib/daemonlet/libdaemonlet-containerd.so
  --runtime-endpoint unix:///PATH
                             engine socket (default /var/run/docker.sock or
                             /run/containerd/containerd.sock)
  --state-dir DIR            where the last good desired state (and its ETag) is kept
                             (/var/lib/daemonlet)
  --listen HOST:PORT         introspection API address (default 127.0.0.1:51680)
  --instance-id ID           default: /etc/machine-id
  --log-level trace|debug|info|warn|error
  --log-format text|json
  --once                     converge once; exit 0 if converged, 1 if not
  --dry-run                  print the plan and touch no container (a control endpoint
                             is registered with and asked for the desired state)
  --drain-on-exit            SIGTERM drains application tasks, then daemons (for hosts
                             without systemd); without it SIGTERM leaves containers running
)";
}

Command parseCommandLine(const std::vector<std::string>& args) {
  if (args.size() < 2) return UsageError{"daemonlet: missing command\n\n" + mainHelp()};
  const std::string& command = args[1];
  if (command == "--help" || command == "-h" || command == "help") return HelpRequest{mainHelp()};
  if (command == "version" || command == "--version") return VersionCommand{};

  if (command == "run") {
    if (wantsHelp(args, 2)) return HelpRequest{runHelp()};
    RunOptions o;
    std::map<std::string, FlagSpec> flags = {
        {"--config", into(o.config)},
        {"--source", into(o.source)},
        {"--runtime", oneOf(o.runtime, {"docker", "containerd"})},
        {"--runtime-endpoint", into(o.runtimeEndpoint)},
        {"--state-dir", into(o.stateDir)},
        {"--listen", into(o.listen)},
        {"--instance-id", into(o.instanceId)},
        {"--log-level", oneOf(o.logLevel, {"trace", "debug", "info", "warn", "error"})},
        {"--log-format", oneOf(o.logFormat, {"text", "json"})},
        {"--once", set(o.once)},
        {"--dry-run", set(o.dryRun)},
        {"--drain-on-exit", set(o.drainOnExit)},
    };
    if (auto err = parseFlags(command, args, 2, flags, nullptr)) return *err;
    if (o.runtimeEndpoint && o.runtimeEndpoint->rfind("unix://", 0) != 0)
      return UsageError{"daemonlet run: --runtime-endpoint must be unix:///PATH"};
    return o;
  }
  if (command == "validate") {
    if (wantsHelp(args, 2)) return HelpRequest{"Usage: daemonlet validate FILE|DIR...\n\nChecks task definitions (JSON or YAML, ECS shape), agent config files, or a\ndefinitions directory (daemons/ and tasks/). Prints FILE:LINE:COL: message for every\nproblem; exits 0 when all are valid, 1 when any has an error, 2 on usage errors.\n"};
    ValidateCommand v;
    if (auto err = parseFlags(command, args, 2, {}, &v.files)) return *err;
    if (v.files.empty()) return UsageError{"daemonlet validate: name at least one FILE"};
    return v;
  }
  if (command == "status") {
    if (wantsHelp(args, 2)) return HelpRequest{"Usage: daemonlet status [--socket PATH | --listen HOST:PORT] [--json]\n\nAsks the agent over its API socket (default /run/daemonlet/api.sock), or over its\nread-only TCP listener with --listen.\n"};
    StatusCommand s;
    if (auto err = parseFlags(command, args, 2, {{"--socket", into(s.endpoint)}, {"--listen", into(s.endpoint)}, {"--json", set(s.json)}}, nullptr)) return *err;
    return s;
  }
  if (command == "drain") {
    if (wantsHelp(args, 2)) return HelpRequest{"Usage: daemonlet drain [--socket PATH] [--wait] [--timeout SECONDS]\n\nStops admitting application tasks and stops those running; daemons keep running.\nGoes through the API socket (default /run/daemonlet/api.sock). --wait returns once the\nruntime confirms no application container runs.\n"};
    DrainCommand d;
    FlagSpec timeout{true, [&d](const std::string& v) {
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d.timeoutSeconds);
      return ec == std::errc{} && end == v.data() + v.size() && d.timeoutSeconds >= 0;
    }};
    if (auto err = parseFlags(command, args, 2, {{"--socket", into(d.socket)}, {"--wait", set(d.wait)}, {"--timeout", timeout}}, nullptr)) return *err;
    return d;
  }
  if (command == "undrain") {
    if (wantsHelp(args, 2)) return HelpRequest{"Usage: daemonlet undrain [--socket PATH]\n\nEnds a drain (daemonlet drain, or one resumed from stateDir/drain): application\ntasks are admitted again. Refused while the instance shuts down.\n"};
    UndrainCommand u;
    if (auto err = parseFlags(command, args, 2, {{"--socket", into(u.socket)}}, nullptr)) return *err;
    return u;
  }
  return UsageError{fmt::format("daemonlet: unknown command '{}'\n\n{}", command, mainHelp())};
}

}  // namespace daemonlet::agent
