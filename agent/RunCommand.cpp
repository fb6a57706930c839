#include "agent/RunCommand.h"

#include <iostream>

#include "agent/Logger.h"
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
  log.configure(cfg.value->logLevel, cfg.value->logFormat);
  log.error("daemonlet run: running containers is not implemented yet (needs the runtime adapter); "
            "use 'daemonlet validate {}' to check definitions", cfg.value->source.path);
  return 2;
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
