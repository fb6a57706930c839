#pragma once
// `daemonlet run`, `status`, `drain` and `undrain`: each returns the process exit code.
#include "agent/cli/Cli.h"
#include "config/AgentConfig.h"

namespace daemonlet::agent {

// Defaults, then the config file and drop-ins, then the flags (DESIGN 3.1).
config::Parsed<config::AgentConfig> resolveConfig(const RunOptions& options);

int runAgent(const RunOptions& options);
int runStatus(const StatusCommand& command);
int runDrain(const DrainCommand& command);
int runUndrain(const UndrainCommand& command);

}  // namespace daemonlet::agent
