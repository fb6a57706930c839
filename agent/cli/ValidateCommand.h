#pragma once
// `daemonlet validate FILE|DIR...`: every problem printed as FILE:LINE:COL: message.
#include <ostream>

#include "agent/cli/Cli.h"

namespace daemonlet::agent {

// Returns the exit code: 0 all valid, 1 any error.
int runValidate(const ValidateCommand& command, std::ostream& out, std::ostream& err);

}  // namespace daemonlet::agent
