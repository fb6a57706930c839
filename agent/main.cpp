#include <iostream>
#include <string>
#include <vector>

#include "agent/cli/Cli.h"
#include "agent/cli/RunCommand.h"
#include "agent/cli/ValidateCommand.h"

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

int main(int argc, char** argv) {
  using namespace daemonlet::agent;
  const std::vector<std::string> args(argv, argv + argc);
  return std::visit(
      Overloaded{
          [](const HelpRequest& h) { std::cout << h.text; return 0; },
          [](const UsageError& e) { std::cerr << e.message << '\n'; return 2; },
          [](const VersionCommand&) { std::cout << "daemonlet " << DAEMONLET_VERSION << '\n'; return 0; },
          [](const ValidateCommand& v) { return runValidate(v, std::cout, std::cerr); },
          [](const RunOptions& o) { return runAgent(o); },
          [](const StatusCommand& s) { return runStatus(s); },
          [](const DrainCommand& d) { return runDrain(d); },
          [](const UndrainCommand& u) { return runUndrain(u); },
      },
      parseCommandLine(args));
}
