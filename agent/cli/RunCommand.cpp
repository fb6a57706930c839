#include "agent/cli/RunCommand.h"
#include "agent/EventLoop.h"
#include "runtime/JsonText.h"

#include <iostream>

#include <csignal>
#include <cstdlib>
#include <functional>

#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/Agent.h"
#include "agent/api/ApiClient.h"
#include "agent/Guarded.h"
#include "agent/Logger.h"
#include "agent/host/ContainerdModule.h"
#include "agent/source/RegistryHttpGet.h"
#include "runtime/docker/DockerRuntime.h"
#include "runtime/LimitedRuntime.h"
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
  // Caught from the first moment: a SIGTERM while the config loads is handled once the loop
  // runs (asio keeps it pending), instead of killing the agent by the default action.
  EventLoop io;
  asio::signal_set signals(io, SIGTERM, SIGINT);
  Logger log(std::cerr);
  if (isJournalStream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO)) {
    if (auto why = log.useJournal()) log.warn("stderr is the journal, but logging to it natively is not possible: {}", *why);
  }
  auto cfg = resolveConfig(options);
  for (const auto& d : cfg.diagnostics) log.write(d.severity == config::Severity::Error ? config::LogLevel::Error : config::LogLevel::Warn, d.format());
  if (!cfg.ok()) {
    log.error("config is invalid; not starting");
    return 1;
  }
  config::AgentConfig config = *cfg.value;
  log.configure(config.logLevel, config.logFormat);
  if (config.source.type == config::SourceType::Http && config.source.url.rfind("http://", 0) != 0 &&
      config.source.url.rfind("https://", 0) != 0) {
    log.error("source.type is http, but source.url '{}' is not an http:// or https:// URL", config.source.url);
    return 1;
  }
  if (config.instance.id == "auto") config.instance.id = detectInstanceId();

  runtime::RuntimePtr runtime;
  if (config.runtime.type == config::RuntimeType::Containerd) {
    runtime::ContainerdRuntime::Options engine;
    engine.ns = config.runtime.namespaceName;
    engine.logDir = config.stateDir + "/containerd-logs";
    engine.registryGet = registryHttpGet();
    engine.insecureRegistries = {config.runtime.insecureRegistries.begin(), config.runtime.insecureRegistries.end()};
    engine.pullDir = config.stateDir + "/containerd-pull";
    try {
      runtime = loadContainerdRuntime(io.get_executor(), config::runtimeEndpoint(config), engine);
    } catch (const std::exception& e) {
      log.error("runtime containerd: {}", e.what());
      return 1;
    }
    log.info("runtime: containerd namespace {}, container logs in {}", engine.ns, engine.logDir);
  } else {
    runtime = std::make_unique<runtime::DockerRuntime>(io.get_executor(), config::runtimeEndpoint(config));
  }
  // A thousand tasks must not become a thousand engine calls at once (issue 15).
  runtime = std::make_unique<runtime::LimitedRuntime>(io.get_executor(), std::move(runtime), config.runtime.maxCallsInFlight);
  Agent agent(io, config, {options.once, options.dryRun, options.drainOnExit, std::chrono::seconds(300)}, log, *runtime);
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
  // An exception thrown by a handler comes out of run(); asio allows running on. The agent
  // logs and counts it rather than dying with its containers' bookkeeping half done.
  for (;;) {
    try {
      io.run();
      break;
    } catch (...) {
      agent.internalError("an event handler", describeException(std::current_exception()));
    }
  }
  // The runtime's threads hand back what they still hold first; then the loop's pending
  // work goes while the agent and the runtime, which it refers to, are still alive.
  runtime->close();
  io.discardPendingWork();
  return exitCode;
}

namespace {

std::optional<nlohmann::json> fetch(const std::string& endpoint, const std::string& path, std::string& problem) {
  ApiReply r = callApi(endpoint, "GET", path);
  if (r.status == 0) {
    problem = fmt::format("cannot reach the agent at {}: {} (is daemonlet running? see --socket; as a user not in the daemonlet group, --listen reads the TCP API)", endpoint, r.error);
    return std::nullopt;
  }
  auto json = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200 || json.is_discarded()) {
    problem = fmt::format("GET {} answered HTTP {}: {}", path, r.status, r.body.substr(0, 200));
    return std::nullopt;
  }
  return json;
}

std::string text(const nlohmann::json& j) { return j.is_string() ? j.get<std::string>() : j.is_null() ? "" : jsonText(j); }

}  // namespace

int runStatus(const StatusCommand& command) {
  std::string problem;
  auto metadata = fetch(command.endpoint, "/v1/metadata", problem);
  auto daemons = metadata ? fetch(command.endpoint, "/v1/daemons", problem) : std::nullopt;
  auto tasks = daemons ? fetch(command.endpoint, "/v1/tasks", problem) : std::nullopt;
  if (!tasks) {
    std::cerr << "daemonlet status: " << problem << '\n';
    return 1;
  }
  if (command.json) {
    std::cout << jsonText(nlohmann::json{{"metadata", *metadata}, {"daemons", *daemons}, {"tasks", *tasks}}, 2) << '\n';
    return 0;
  }
  const auto& m = *metadata;
  std::cout << fmt::format("instance {}  cluster {}  daemonlet {}\n", text(m["instanceId"]), text(m["cluster"]), text(m["version"]));
  std::cout << fmt::format("phase {}  slot gate {}{}\n", text(m["phase"]), m["slotGateOpen"].get<bool>() ? "open" : "closed",
                           text(m["slotGateReason"]).empty() ? "" : " (" + text(m["slotGateReason"]) + ")");
  auto res = [&](const char* k) { return fmt::format("{} CPU / {} MiB", m[k]["cpu"].get<long>(), m[k]["memory"].get<long>()); };
  std::cout << fmt::format("capacity {}, reserved {}, daemons {}, available {}\n", res("capacity"), res("reserved"), res("daemonReserved"), res("available"));
  if (!text(m["runtime"]).empty()) std::cout << "runtime " << text(m["runtime"]) << '\n';
  for (const auto& p : m.value("sourceProblems", nlohmann::json::array())) std::cout << "source problem: " << text(p) << '\n';
  const auto orphans = m.value("orphans", nlohmann::json::array());
  if (!orphans.empty()) {
    std::cout << fmt::format("orphans: {} managed container(s) of other instance ids (not adopted, not removed):\n", orphans.size());
    for (const auto& o : orphans) std::cout << fmt::format("  {} {} (instance {})\n", text(o["id"]).substr(0, 12), text(o["name"]), text(o["instance"]));
  }
  std::cout << '\n';
  std::cout << fmt::format("{:<24} {:>4} {:<12} {:<10} {:>8}  {}\n", "DAEMON", "REV", "STATUS", "HEALTH", "RESTARTS", "LAST ERROR");
  for (const auto& d : *daemons) {
    std::cout << fmt::format("{:<24} {:>4} {:<12} {:<10} {:>8}  {}\n", text(d["family"]), text(d["revision"]), text(d["status"]),
                             text(d["health"]), text(d["restarts"]), text(d["lastError"]));
  }
  std::cout << fmt::format("\n{:<24} {:<16} {:>4} {:<12} {:>8}  {}\n", "TASK", "FAMILY", "REV", "STATUS", "RESTARTS", "REASON");
  for (const auto& t : *tasks) {
    std::cout << fmt::format("{:<24} {:<16} {:>4} {:<12} {:>8}  {}\n", text(t["id"]), text(t["family"]), text(t["revision"]), text(t["status"]),
                             text(t.value("restarts", nlohmann::json(0))),
                             t.value("policyProblem", nlohmann::json()).is_string() ? text(t["policyProblem"]) : text(t["stoppedReason"]));
  }
  return 0;
}

namespace {

// POST or DELETE /v1/drain on the API socket; false (and the reason on stderr) unless 202.
bool requestDrainChange(const char* command, const char* method, const std::string& socket) {
  ApiReply r = callApi(socket, method, "/v1/drain");
  if (r.status == 202) return true;
  std::cerr << "daemonlet " << command << ": "
            << (r.status ? fmt::format("HTTP {}: {}", r.status, r.body) : fmt::format("cannot reach the agent at {}: {}", socket, r.error)) << '\n';
  return false;
}

}  // namespace

int runUndrain(const UndrainCommand& command) {
  if (!requestDrainChange("undrain", "DELETE", command.socket)) return 1;
  std::cout << "undrained: application tasks are admitted again\n";
  return 0;
}

int runDrain(const DrainCommand& command) {
  if (!requestDrainChange("drain", "POST", command.socket)) return 1;
  std::cout << "drain accepted: admitting nothing, stopping application tasks; daemons keep running\n";
  if (!command.wait) return 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(command.timeoutSeconds);
  for (;;) {
    std::string problem;
    auto m = fetch(command.socket, "/v1/metadata", problem);
    const std::string phase = m ? text((*m)["phase"]) : "";
    if (phase == "DRAINED" || phase == "STOPPING_DAEMONS" || phase == "STOPPED") {
      std::cout << "drained: no application task is running\n";
      return 0;
    }
    if (command.timeoutSeconds > 0 && std::chrono::steady_clock::now() > deadline) {
      std::cerr << fmt::format("daemonlet drain: still {} after {} s\n", phase.empty() ? problem : phase, command.timeoutSeconds);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace daemonlet::agent
