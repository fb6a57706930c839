#include <catch2/catch.hpp>

#include "agent/cli/Cli.h"

using namespace daemonlet::agent;

namespace {
Command parse(std::vector<std::string> args) {
  args.insert(args.begin(), "daemonlet");
  return parseCommandLine(args);
}
}  // namespace

TEST_CASE("run flags parse in both spellings") {
  auto c = parse({"run", "--source=/srv/defs", "--runtime", "containerd", "--once", "--dry-run", "--log-level", "debug"});
  REQUIRE(std::holds_alternative<RunOptions>(c));
  const auto& o = std::get<RunOptions>(c);
  CHECK(o.source == "/srv/defs");
  CHECK(o.runtime == "containerd");
  CHECK(o.once);
  CHECK(o.dryRun);
  CHECK_FALSE(o.drainOnExit);
  CHECK(o.logLevel == "debug");
}

TEST_CASE("usage errors say what is wrong") {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{}, "missing command"},
      {{"launch"}, "unknown command 'launch'"},
      {{"run", "--bogus"}, "unknown flag '--bogus'"},
      {{"run", "--runtime", "podman"}, "bad value 'podman' for --runtime"},
      {{"run", "--config"}, "--config needs a value"},
      {{"run", "--once=yes"}, "--once takes no value"},
      {{"run", "--runtime-endpoint", "tcp://x"}, "must be unix:///PATH"},
      {{"validate"}, "name at least one FILE"},
      {{"drain", "--timeout", "-3"}, "bad value '-3' for --timeout"},
      {{"status", "extra"}, "unexpected argument 'extra'"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.args);
    REQUIRE(std::holds_alternative<UsageError>(r));
    INFO(std::get<UsageError>(r).message);
    CHECK(std::get<UsageError>(r).message.find(c.message) != std::string::npos);
  }
}

TEST_CASE("help lists every run flag of the contract") {
  auto c = parse({"run", "--help"});
  REQUIRE(std::holds_alternative<HelpRequest>(c));
  const std::string text = std::get<HelpRequest>(c).text;
  for (const char* flag : {"--config", "--source", "--runtime", "--runtime-endpoint", "--state-dir", "--listen",
                           "--instance-id", "--log-level", "--log-format", "--once", "--dry-run", "--drain-on-exit"}) {
    CHECK(text.find(flag) != std::string::npos);
  }
  CHECK(std::holds_alternative<HelpRequest>(parse({"--help"})));
  CHECK(std::holds_alternative<VersionCommand>(parse({"version"})));
}

TEST_CASE("validate and drain take their arguments") {
  auto v = parse({"validate", "a.json", "b.yaml"});
  REQUIRE(std::holds_alternative<ValidateCommand>(v));
  CHECK(std::get<ValidateCommand>(v).files.size() == 2);
  auto d = parse({"drain", "--wait", "--timeout", "30"});
  REQUIRE(std::holds_alternative<DrainCommand>(d));
  CHECK(std::get<DrainCommand>(d).wait);
  CHECK(std::get<DrainCommand>(d).timeoutSeconds == 30);
}

TEST_CASE("drain and undrain go through the API socket, status takes either") {
  auto u = parse({"undrain", "--socket", "/tmp/a.sock"});
  REQUIRE(std::holds_alternative<UndrainCommand>(u));
  CHECK(std::get<UndrainCommand>(u).socket == "/tmp/a.sock");
  CHECK(std::get<DrainCommand>(parse({"drain"})).socket == "/run/daemonlet/api.sock");
  CHECK(std::holds_alternative<UsageError>(parse({"drain", "--listen", "127.0.0.1:5"})));
  CHECK(std::get<StatusCommand>(parse({"status"})).endpoint == "/run/daemonlet/api.sock");
  CHECK(std::get<StatusCommand>(parse({"status", "--listen", "127.0.0.1:5"})).endpoint == "127.0.0.1:5");
  CHECK(mainHelp().find("daemonlet undrain") != std::string::npos);
  CHECK(std::holds_alternative<UsageError>(parse({"undrain", "--wait"})));
}
