#include "config/AgentConfig.h"

#include <algorithm>

#include <fmt/format.h>

#include "config/FieldReader.h"
#include "config/TaskDefinitionParser.h"

namespace daemonlet::config {
namespace {

namespace fs = std::filesystem;

// Reads the config keys of one document. Unknown keys are errors here, unlike in task
// definitions: a misspelt agent setting silently ignored is an outage waiting to happen.
class ConfigReader {
 public:
  ConfigReader(FieldReader& r, AgentConfig& c) : r_(r), c_(c) {}

  void read(const YAML::Node& doc) {
    if (doc.IsNull()) return;  // an empty file changes nothing
    if (!r_.expectMap(doc, "(document)")) return;
    for (const auto& kv : doc) {
      const std::string key = kv.first.Scalar();
      const YAML::Node v = kv.second;
      if (key == "instance") instance(v);
      else if (key == "source") source(v);
      else if (key == "runtime") runtime(v);
      else if (key == "stateDir") set(c_.stateDir, v, key);
      else if (key == "listen") set(c_.listen, v, key);
      else if (key == "apiSocket") set(c_.apiSocket, v, key);
      else if (key == "listenAllowNonLoopback") {
        if (auto b = r_.boolean(v, key)) c_.listenAllowNonLoopback = *b;
      }
      else if (key == "taskPolicy") taskPolicy(v);
      else if (key == "secrets") section(v, key, [&](const std::string& k, const YAML::Node& x) {
        if (k == "directory") return set(c_.secretsDirectory, x, "secrets.directory");
        return false;
      });
      else if (key == "logDrivers") {
        if (auto m = r_.stringMap(v, key)) c_.logDrivers = *m;
      }
      else if (key == "slotGate") section(v, key, [&](const std::string& k, const YAML::Node& x) {
        if (k == "timeoutSeconds") return count(c_.slotGateTimeoutSeconds, x, "slotGate.timeoutSeconds", 0, 86400);
        return false;
      });
      else if (key == "taskNetwork") taskNetwork(v);
      else if (key == "shutdown") section(v, key, [&](const std::string& k, const YAML::Node& x) {
        if (k == "drainTimeoutSeconds") return count(c_.drainTimeoutSeconds, x, "shutdown.drainTimeoutSeconds", 1, 86400);
        return false;
      });
      else if (key == "log") section(v, key, [&](const std::string& k, const YAML::Node& x) {
        if (k == "level") return choice(c_.logLevel, x, "log.level", parseLogLevel, "trace, debug, info, warn or error");
        if (k == "format") return choice(c_.logFormat, x, "log.format", parseLogFormat, "text or json");
        return false;
      });
      else r_.error(kv.first, key, "unknown key");
    }
  }

 private:
  template <class Each>
  void section(const YAML::Node& v, const std::string& name, Each each) {
    if (!r_.expectMap(v, name)) return;
    for (const auto& kv : v) {
      const std::string key = kv.first.Scalar();
      if (!each(key, kv.second)) r_.error(kv.first, joinField(name, key), "unknown key");
    }
  }

  bool set(std::string& into, const YAML::Node& v, const std::string& field) {
    if (auto s = r_.string(v, field)) into = *s;
    return true;
  }

  bool count(int& into, const YAML::Node& v, const std::string& field, int minimum, int maximum) {
    if (auto i = r_.integer(v, field)) {
      if (*i < minimum || *i > maximum) r_.error(v, field, fmt::format("must be between {} and {}, got {}", minimum, maximum, *i));
      else into = static_cast<int>(*i);
    }
    return true;
  }

  template <class T, class Parse>
  bool choice(T& into, const YAML::Node& v, const std::string& field, Parse parse, const char* allowed) {
    if (auto s = r_.string(v, field)) {
      if (auto parsed = parse(*s)) into = *parsed;
      else r_.error(v, field, fmt::format("expected {}, got \"{}\"", allowed, *s));
    }
    return true;
  }

  std::optional<Resources> resources(const YAML::Node& v, const std::string& field) {
    if (!r_.expectMap(v, field)) return std::nullopt;
    Resources out;
    bool ok = true;
    for (const auto& kv : v) {
      const std::string key = kv.first.Scalar();
      auto i = r_.integer(kv.second, joinField(field, key));
      if (key != "cpu" && key != "memory") { r_.error(kv.first, joinField(field, key), "unknown key (expected cpu or memory)"); ok = false; continue; }
      if (!i) { ok = false; continue; }
      if (*i < 0) { r_.error(kv.second, joinField(field, key), "must not be negative"); ok = false; continue; }
      (key == "cpu" ? out.cpu : out.memory) = *i;
    }
    return ok ? std::optional<Resources>(out) : std::nullopt;
  }

  void taskNetwork(const YAML::Node& v) {
    section(v, "taskNetwork", [&](const std::string& k, const YAML::Node& x) {
      if (k == "name") {
        auto s = r_.string(x, "taskNetwork.name");
        const bool valid = s && !s->empty() && s->size() <= 15 &&
                           std::all_of(s->begin(), s->end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
        if (s && !valid) r_.error(x, "taskNetwork.name", fmt::format("\"{}\" is not a network interface name (1-15 of A-Z a-z 0-9 - _ .)", *s));
        else if (s) c_.taskNetwork.name = *s;
        return true;
      }
      if (k == "subnet") {
        auto s = r_.string(x, "taskNetwork.subnet");
        unsigned a = 0, b = 0, c = 0, d = 0, bits = 0;
        char end = 0;
        const bool valid = s && std::sscanf(s->c_str(), "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &bits, &end) == 5 && a < 256 && b < 256 &&
                           c < 256 && d < 256 && bits >= 8 && bits <= 30;
        if (s && !valid) r_.error(x, "taskNetwork.subnet", fmt::format("\"{}\" is not an IPv4 CIDR with a prefix of 8 to 30 bits", *s));
        else if (s) c_.taskNetwork.subnet = *s;
        return true;
      }
      return false;
    });
  }

  void instance(const YAML::Node& v) {
    section(v, "instance", [&](const std::string& k, const YAML::Node& x) {
      if (k == "id") return set(c_.instance.id, x, "instance.id");
      if (k == "cluster") return set(c_.instance.cluster, x, "instance.cluster");
      if (k == "capacityProvider") return set(c_.instance.capacityProvider, x, "instance.capacityProvider");
      if (k == "attributes") {
        if (auto m = r_.stringMap(x, "instance.attributes")) c_.instance.attributes = *m;
        return true;
      }
      if (k == "capacity") {
        if (x.IsScalar() && x.Scalar() == "auto") c_.instance.capacity.reset();
        else if (auto res = resources(x, "instance.capacity")) c_.instance.capacity = *res;
        return true;
      }
      if (k == "reserved") {
        if (auto res = resources(x, "instance.reserved")) {
          // A partial map overrides only what it names.
          if (x["cpu"].IsDefined()) c_.instance.reserved.cpu = res->cpu;
          if (x["memory"].IsDefined()) c_.instance.reserved.memory = res->memory;
        }
        return true;
      }
      return false;
    });
  }

  void source(const YAML::Node& v) {
    section(v, "source", [&](const std::string& k, const YAML::Node& x) {
      auto& s = c_.source;
      if (k == "type") return choice(s.type, x, "source.type", [](std::string_view t) -> std::optional<SourceType> {
        if (t == "directory") return SourceType::Directory;
        if (t == "http") return SourceType::Http;
        return std::nullopt;
      }, "directory or http");
      if (k == "path") return set(s.path, x, "source.path");
      if (k == "url") return set(s.url, x, "source.url");
      if (k == "tokenFile") return set(s.tokenFile, x, "source.tokenFile");
      if (k == "caFile") return set(s.caFile, x, "source.caFile");
      if (k == "clientCertFile") return set(s.clientCertFile, x, "source.clientCertFile");
      if (k == "clientKeyFile") return set(s.clientKeyFile, x, "source.clientKeyFile");
      if (k == "pollSeconds") return count(s.pollSeconds, x, "source.pollSeconds", 1, 3600);
      if (k == "longPollSeconds") return count(s.longPollSeconds, x, "source.longPollSeconds", 1, 300);
      return false;
    });
  }

  void runtime(const YAML::Node& v) {
    section(v, "runtime", [&](const std::string& k, const YAML::Node& x) {
      if (k == "type") return choice(c_.runtime.type, x, "runtime.type", parseRuntimeType, "docker or containerd");
      if (k == "endpoint") return set(c_.runtime.endpoint, x, "runtime.endpoint");
      if (k == "namespace") return set(c_.runtime.namespaceName, x, "runtime.namespace");
      if (k == "maxCallsInFlight") return count(c_.runtime.maxCallsInFlight, x, "runtime.maxCallsInFlight", 1, 256);
      if (k == "insecureRegistries") return list(c_.runtime.insecureRegistries, x, "runtime.insecureRegistries", false);
      return false;
    });
  }

  // Lists replace the default rather than add to it: `hostPathRoots: [/srv]` means only /srv.
  void taskPolicy(const YAML::Node& v) {
    section(v, "taskPolicy", [&](const std::string& k, const YAML::Node& x) {
      auto& p = c_.taskPolicy;
      const std::string field = joinField("taskPolicy", k);
      if (k == "allowPrivileged") return flag(p.allowPrivileged, x, field);
      if (k == "allowHostNetwork") return flag(p.allowHostNetwork, x, field);
      if (k == "allowHostPid") return flag(p.allowHostPid, x, field);
      if (k == "allowedCapabilities") return list(p.allowedCapabilities, x, field, false);
      if (k == "hostPathRoots") return list(p.hostPathRoots, x, field, true);
      if (k == "environmentFileRoots") return list(p.environmentFileRoots, x, field, true);
      if (k == "sharedVolumes") return list(p.sharedVolumes, x, field, false);
      return false;
    });
  }

  bool flag(bool& into, const YAML::Node& v, const std::string& field) {
    if (auto b = r_.boolean(v, field)) into = *b;
    return true;
  }

  bool list(std::vector<std::string>& into, const YAML::Node& v, const std::string& field, bool absolutePaths) {
    if (!v.IsSequence()) {
      r_.error(v, field, "expected a list");
      return true;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string at = fmt::format("{}[{}]", field, i);
      auto s = r_.string(v[i], at);
      if (!s) { ok = false; continue; }
      if (absolutePaths && (s->empty() || s->front() != '/')) {
        r_.error(v[i], at, fmt::format("must be an absolute path, got \"{}\"", *s));
        ok = false;
        continue;
      }
      out.push_back(*s);
    }
    if (ok) into = std::move(out);
    return true;
  }

  FieldReader& r_;
  AgentConfig& c_;
};

}  // namespace

TaskPolicy taskPolicyOf(const AgentConfig& config) {
  TaskPolicy p = config.taskPolicy;
  p.environmentFileExcludes = {{config.secretsDirectory, "the agent's secrets.directory"},
                               {config.source.tokenFile, "the agent's source.tokenFile"},
                               {config.source.clientKeyFile, "the agent's source.clientKeyFile"}};
  return p;
}

std::string runtimeEndpoint(const AgentConfig& config) {
  if (!config.runtime.endpoint.empty()) return config.runtime.endpoint;
  return config.runtime.type == RuntimeType::Docker ? "unix:///var/run/docker.sock"
                                                    : "unix:///run/containerd/containerd.sock";
}

void applyConfigText(AgentConfig& config, std::string_view text, const std::string& origin,
                     Diagnostics& out) {
  auto doc = parseDocument(text, origin, out);
  if (!doc) return;
  FieldReader reader(origin, out);
  const std::size_t first = out.size();
  guardParse(out, origin, [&] { ConfigReader(reader, config).read(*doc); });
  Diagnostics mine(out.begin() + static_cast<long>(first), out.end());
  sortByPosition(mine);
  std::copy(mine.begin(), mine.end(), out.begin() + static_cast<long>(first));
}

Parsed<AgentConfig> loadAgentConfig(const fs::path& file, bool mustExist) {
  Parsed<AgentConfig> out;
  AgentConfig config;
  std::error_code ec;
  if (fs::exists(file, ec)) {
    if (auto text = readTextFile(file, out.diagnostics)) applyConfigText(config, *text, file.string(), out.diagnostics);
  } else if (mustExist) {
    out.diagnostics.push_back({Severity::Error, file.string(), 0, 0, "", "no such config file"});
  }
  std::vector<fs::path> dropIns;
  const fs::path dir = file.parent_path() / "config.d";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".yaml") dropIns.push_back(it->path());
  }
  std::sort(dropIns.begin(), dropIns.end());
  for (const auto& dropIn : dropIns) {
    if (auto text = readTextFile(dropIn, out.diagnostics)) applyConfigText(config, *text, dropIn.string(), out.diagnostics);
  }
  if (!hasErrors(out.diagnostics)) out.value = std::move(config);
  return out;
}

bool looksLikeAgentConfig(std::string_view text) {
  Diagnostics ignored;
  auto doc = parseDocument(text, "", ignored);
  if (!doc || !doc->IsMap()) return false;
  static const std::set<std::string> keys = {"instance", "source", "runtime", "stateDir", "listen", "apiSocket", "listenAllowNonLoopback", "taskPolicy", "secrets", "logDrivers", "slotGate", "shutdown", "log", "taskNetwork"};
  for (const auto& kv : *doc) {
    if (keys.count(kv.first.Scalar())) return true;
  }
  return false;
}

std::optional<LogLevel> parseLogLevel(std::string_view t) {
  if (t == "trace") return LogLevel::Trace;
  if (t == "debug") return LogLevel::Debug;
  if (t == "info") return LogLevel::Info;
  if (t == "warn") return LogLevel::Warn;
  if (t == "error") return LogLevel::Error;
  return std::nullopt;
}

std::optional<LogFormat> parseLogFormat(std::string_view t) {
  if (t == "text") return LogFormat::Text;
  if (t == "json") return LogFormat::Json;
  return std::nullopt;
}

std::optional<RuntimeType> parseRuntimeType(std::string_view t) {
  if (t == "docker") return RuntimeType::Docker;
  if (t == "containerd") return RuntimeType::Containerd;
  return std::nullopt;
}

const char* toString(RuntimeType type) { return type == RuntimeType::Docker ? "docker" : "containerd"; }
const char* toString(SourceType type) { return type == SourceType::Directory ? "directory" : "http"; }
const char* toString(LogLevel level) {
  switch (level) {
    case LogLevel::Trace: return "trace";
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "?";
}

}  // namespace daemonlet::config
