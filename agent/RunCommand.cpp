#include "agent/RunCommand.h"

#include <iostream>

#include <csignal>
#include <cstdlib>
#include <functional>

#include "agent/Agent.h"
#include "agent/Logger.h"
#include "runtime/DockerRuntime.h"
#include "config/DefinitionDirectory.h"

namespace daemonlet::agent {

config::Parsed<config::AgentConfig> resolveConfig(const RunOptions& o) {
  auto parsed = config::loadAgentConfig(o.config.value_or(config::kDefaultConfigPath), o.config.has_value());
  if (!parsed.value) return parsed;
  auto& c = *parsed.value;
  if (o.source) {
    const bool url = o.source->rfind("http://", 0) == 0 || o.source->rfind("https://", 0) == 0;
    c.source.type = url ? config::SourceType::Http : config::SourceType::Directory;
    (url ? c.source.url : c.source.path) = *o.source;
  }
  if (o.runtime) {
    c.runtime.type = *config::parseRuntimeType(*o.runtime);
  }
  if (o.runtimeEndpoint) c.runtime.endpoint = *o.runtimeEndpoint;
  if (o.stateDir) c.stateDir = *o.stateDir;
  if (o.listen) c.listen = *o.listen;
  if (o.instanceId) c.instance.id = *o.instanceId;
  if (o.logLevel) c.logLevel = *config::parseLogLevel(*o.logLevel);
  if (o.logFormat) c.logFormat = *config::parseLogFormat(*o.logFormat);
  return parsed;
}

int runAgent(const RunOptions& options) {
  Logger log(std::cerr);
  auto cfg = resolveConfig(options);
  for (const auto& d : cfg.diagnostics) log.write(d.severity == config::Severity::Error ? config::LogLevel::Error : config::LogLevel::Warn, d.format());
  if (!cfg.ok()) {
    log.error("config is invalid; not starting");
    return 1;
  }
  config::AgentConfig config = *cfg.value;
  log.configure(config.logLevel, config.logFormat);
  if (config.source.type == config::SourceType::Http) {
    log.error("source {}: the http control endpoint source is not implemented yet; use a definitions directory", config.source.url);
    return 2;
  }
  if (config.runtime.type == config::RuntimeType::Containerd) {
    log.error("runtime containerd: the containerd adapter is not implemented yet; use --runtime docker");
    return 2;
  }
  if (config.instance.id == "auto") config.instance.id = detectInstanceId();

  asio::io_context io;
  runtime::DockerRuntime runtime(io.get_executor(), config::runtimeEndpoint(config));
  Agent agent(io, config, {options.once, options.dryRun, options.drainOnExit, std::chrono::seconds(300)}, log, runtime);
  asio::signal_set signals(io, SIGTERM, SIGINT);
  int signalsSeen = 0;
  std::function<void()> armSignals = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (++signalsSeen > 1) {
        log.warn("second signal: exiting now; containers are left as they are");
        std::_Exit(1);
      }
      log.info("received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
      agent.terminate();
      armSignals();
    });
  };
  armSignals();
  int exitCode = 1;
  asio::co_spawn(io, agent.run(), [&](std::exception_ptr e, int code) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log.error("agent loop failed: {}", ex.what());
      }
    } else {
      exitCode = code;
    }
    io.stop();
  });
  io.run();
  return exitCode;
}

int runStatus(const StatusCommand&) {
  std::cerr << "daemonlet status: not implemented yet (needs the introspection API)\n";
  return 2;
}

int runDrain(const DrainCommand&) {
  std::cerr << "daemonlet drain: not implemented yet (needs the introspection API)\n";
  return 2;
}

}  // namespace daemonlet::agent
