#include "runtime/docker/DockerJson.h"
#include "runtime/JsonText.h"

#include <ctime>
#include <sstream>

#include <fmt/format.h>

namespace daemonlet::runtime::docker {
namespace {

using nlohmann::json;

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

std::int64_t nanos(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

bool flag(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

// The member `key` when it is an object; an empty object otherwise (nlohmann's value()
// throws on a non-object, and the engine's JSON is not ours to trust).
const json& objectAt(const json& j, const char* key) {
  static const json empty = json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

Labels labelsOf(const json& j) {
  Labels out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

json createBody(const ContainerSpec& spec) {
  json body = {{"Image", spec.image}, {"Labels", spec.labels}, {"Env", spec.env}};
  if (!spec.command.empty()) body["Cmd"] = spec.command;
  if (!spec.entrypoint.empty()) body["Entrypoint"] = spec.entrypoint;
  if (spec.user) body["User"] = *spec.user;
  if (spec.workingDir) body["WorkingDir"] = *spec.workingDir;
  if (spec.stopTimeoutSeconds) body["StopTimeout"] = *spec.stopTimeoutSeconds;
  if (spec.healthCheck) {
    body["Healthcheck"] = {{"Test", spec.healthCheck->test},
                           {"Interval", nanos(spec.healthCheck->interval)},
                           {"Timeout", nanos(spec.healthCheck->timeout)},
                           {"StartPeriod", nanos(spec.healthCheck->startPeriod)},
                           {"Retries", spec.healthCheck->retries}};
  }

  // The agent supervises restarts itself (with backoff and the slot gate), so the engine
  // must never restart a container behind its back.
  json host = {{"NetworkMode", spec.networkMode}, {"RestartPolicy", {{"Name", "no"}}}};
  json exposed = json::object();
  json bindings = json::object();
  for (const auto& p : spec.ports) {
    const std::string key = fmt::format("{}/{}", p.containerPort, p.protocol);
    exposed[key] = json::object();
    bindings[key].push_back({{"HostPort", p.hostPort ? std::to_string(p.hostPort) : ""}});
  }
  if (!spec.ports.empty()) {
    body["ExposedPorts"] = exposed;
    host["PortBindings"] = bindings;
  }
  json mounts = json::array();
  for (const auto& m : spec.mounts) {
    json mount = {{"Target", m.target}, {"ReadOnly", m.readOnly}};
    switch (m.type) {
      case Mount::Type::Bind: mount["Type"] = "bind"; mount["Source"] = m.source; break;
      case Mount::Type::Volume: mount["Type"] = "volume"; mount["Source"] = m.source; break;
      case Mount::Type::Tmpfs: {
        mount["Type"] = "tmpfs";
        json options = json::object();
        if (m.tmpfsSizeBytes > 0) options["SizeBytes"] = m.tmpfsSizeBytes;
        mount["TmpfsOptions"] = options;
        break;
      }
    }
    mounts.push_back(std::move(mount));
  }
  if (!mounts.empty()) host["Mounts"] = mounts;
  if (!spec.volumesFrom.empty()) host["VolumesFrom"] = spec.volumesFrom;
  if (spec.pidMode) host["PidMode"] = *spec.pidMode;
  if (spec.privileged) host["Privileged"] = true;
  if (spec.readOnlyRootfs) host["ReadonlyRootfs"] = true;
  if (spec.init) host["Init"] = true;
  if (!spec.capAdd.empty()) host["CapAdd"] = spec.capAdd;
  if (!spec.capDrop.empty()) host["CapDrop"] = spec.capDrop;
  if (!spec.ulimits.empty()) {
    json ulimits = json::array();
    for (const auto& u : spec.ulimits) ulimits.push_back({{"Name", u.name}, {"Soft", u.soft}, {"Hard", u.hard}});
    host["Ulimits"] = ulimits;
  }
  if (spec.log) host["LogConfig"] = {{"Type", spec.log->driver}, {"Config", spec.log->options}};
  if (spec.memoryBytes) host["Memory"] = *spec.memoryBytes;
  if (spec.memoryReservationBytes) host["MemoryReservation"] = *spec.memoryReservationBytes;
  if (spec.cpuShares > 0) host["CpuShares"] = spec.cpuShares;
  if (spec.nanoCpus) host["NanoCpus"] = *spec.nanoCpus;
  if (spec.cgroupParent) host["CgroupParent"] = *spec.cgroupParent;
  body["HostConfig"] = std::move(host);
  return body;
}

ContainerState parseState(std::string_view s) {
  if (s == "created") return ContainerState::Created;
  if (s == "running") return ContainerState::Running;
  if (s == "paused") return ContainerState::Paused;
  if (s == "restarting") return ContainerState::Restarting;
  if (s == "removing") return ContainerState::Removing;
  if (s == "exited") return ContainerState::Exited;
  if (s == "dead") return ContainerState::Dead;
  return ContainerState::Unknown;
}

Health parseHealth(std::string_view s) {
  if (s == "starting") return Health::Starting;
  if (s == "healthy") return Health::Healthy;
  if (s == "unhealthy") return Health::Unhealthy;
  return Health::None;
}

std::optional<Clock::time_point> parseTime(std::string_view text) {
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second, &consumed) != 6) return std::nullopt;
  // Docker's zero time is year 1; a year the nanosecond clock cannot hold (it spans about
  // 1678 to 2262) would overflow it.
  if (year < 1970 || year > 2200) return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  auto point = Clock::from_time_t(timegm(&tm));
  std::size_t i = static_cast<std::size_t>(consumed);
  if (i < s.size() && s[i] == '.') {
    std::int64_t fraction = 0;
    int digits = 0;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      if (digits < 9) { fraction = fraction * 10 + (s[i] - '0'); ++digits; }
    }
    for (; digits < 9; ++digits) fraction *= 10;
    point += std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(fraction));
  }
  return point;
}

Result<ContainerInfo> parseInspect(const json& j) {
  ContainerInfo c;
  c.id = str(j, "Id");  // absent, or not a string
  if (c.id.empty()) return Error{Error::Code::Protocol, "inspect answer has no Id"};
  c.name = str(j, "Name");
  if (!c.name.empty() && c.name.front() == '/') c.name.erase(0, 1);
  c.createdAt = parseTime(str(j, "Created"));
  if (auto config = j.find("Config"); config != j.end() && config->is_object()) {
    c.image = str(*config, "Image");
    if (config->contains("Labels")) c.labels = labelsOf((*config)["Labels"]);
  }
  if (auto state = j.find("State"); state != j.end() && state->is_object()) {
    c.state = parseState(str(*state, "Status"));
    c.exitCode = static_cast<int>(num(*state, "ExitCode"));
    c.oomKilled = flag(*state, "OOMKilled");
    c.startedAt = parseTime(str(*state, "StartedAt"));
    c.finishedAt = parseTime(str(*state, "FinishedAt"));
    if (auto health = state->find("Health"); health != state->end() && health->is_object()) c.health = parseHealth(str(*health, "Status"));
  }
  if (auto host = j.find("HostConfig"); host != j.end() && host->is_object()) {
    if (auto m = num(*host, "Memory"); m > 0) c.memoryBytes = m;
    c.cpuShares = num(*host, "CpuShares");
    if (auto n = num(*host, "NanoCpus"); n > 0) c.nanoCpus = n;
    c.cgroupParent = str(*host, "CgroupParent");
    if (auto log = host->find("LogConfig"); log != host->end() && log->is_object()) c.logDriver = str(*log, "Type");
  }
  // A container on a user-defined network has its address there; one in another's
  // namespace (container:<id>) has none of its own.
  if (auto net = j.find("NetworkSettings"); net != j.end() && net->is_object()) {
    c.ipAddress = str(*net, "IPAddress");
    if (auto nets = net->find("Networks"); c.ipAddress.empty() && nets != net->end() && nets->is_object()) {
      for (const auto& [name, n] : nets->items()) {
        if (n.is_object() && !str(n, "IPAddress").empty()) {
          c.ipAddress = str(n, "IPAddress");
          break;
        }
      }
    }
  }
  return c;
}

json volumeCreateBody(const VolumeSpec& spec) {
  return {{"Name", spec.name}, {"Driver", spec.driver}, {"DriverOpts", spec.driverOpts}, {"Labels", spec.labels}};
}

Result<VolumeInfo> parseVolume(const json& j) {
  if (!j.is_object() || !j.contains("Name")) return Error{Error::Code::Protocol, "volume answer has no Name"};
  VolumeInfo v;
  v.name = str(j, "Name");
  v.driver = str(j, "Driver");
  v.options = labelsOf(j.value("Options", json::object()));
  v.labels = labelsOf(j.value("Labels", json::object()));
  return v;
}

std::vector<std::string> parseLogDrivers(const json& info) {
  std::vector<std::string> out;
  if (!info.is_object()) return out;
  const json plugins = info.value("Plugins", json::object());
  if (!plugins.is_object()) return out;
  if (auto log = plugins.find("Log"); log != plugins.end() && log->is_array()) {
    for (const auto& d : *log) {
      if (d.is_string()) out.push_back(d.get<std::string>());
    }
  }
  return out;
}

std::optional<RuntimeEvent> parseEvent(std::string_view line) {
  auto j = json::parse(line, nullptr, false);
  if (!j.is_object() || str(j, "Type") != "container") return std::nullopt;
  const std::string action = str(j, "Action");
  RuntimeEvent e;
  if (action == "start") e.kind = RuntimeEvent::Kind::Start;
  else if (action == "die") e.kind = RuntimeEvent::Kind::Exit;
  else if (action == "oom") e.kind = RuntimeEvent::Kind::Oom;
  else if (action == "destroy") e.kind = RuntimeEvent::Kind::Destroy;
  else if (action.rfind("health_status: ", 0) == 0) {
    e.kind = RuntimeEvent::Kind::HealthChanged;
    e.health = parseHealth(action.substr(15));
  } else {
    return std::nullopt;
  }
  const json& actor = objectAt(j, "Actor");
  e.containerId = str(actor, "ID");
  // Attributes mix the container's labels with a few of the engine's own keys.
  e.labels = labelsOf(objectAt(actor, "Attributes"));
  if (auto code = e.labels.find("exitCode"); code != e.labels.end()) {
    try {
      e.exitCode = std::stoi(code->second);
    } catch (const std::exception&) {
      e.exitCode.reset();
    }
  }
  for (const char* engineKey : {"exitCode", "image", "name", "signal", "execDuration"}) e.labels.erase(engineKey);
  const std::int64_t timeNano = num(j, "timeNano");
  e.time = timeNano > 0 ? Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(timeNano)))
                        : Clock::now();
  return e;
}

void takeLines(std::string& buffer, const std::function<void(std::string_view)>& onLine) {
  std::size_t start = 0;
  for (std::size_t end; (end = buffer.find('\n', start)) != std::string::npos; start = end + 1) {
    if (end > start) onLine(std::string_view(buffer).substr(start, end - start));
  }
  buffer.erase(0, start);
}

std::string urlEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string filtersQuery(const LabelSelector& selector, const json& extra) {
  json filters = extra;
  for (const auto& [k, v] : selector) filters["label"].push_back(k + "=" + v);
  return urlEncode(jsonText(filters));
}

EngineInfo parseEngineInfo(const json& version, const json& info, std::string api) {
  const std::string number = str(version, "Version");
  EngineInfo engine{"docker", number.empty() ? std::string(1, '?') : number, std::move(api)};
  const std::string driver = str(info, "CgroupDriver");
  if (!driver.empty()) engine.cgroupDriver = driver;
  const std::string v = str(info, "CgroupVersion");
  engine.cgroupVersion = v == "2" ? 2 : v == "1" ? 1 : 0;
  return engine;
}

std::optional<std::string> createdId(const json& answer) {
  std::string id = str(answer, "Id");
  if (id.empty()) return std::nullopt;
  return id;
}

std::vector<std::string> listedIds(const json& list) {
  std::vector<std::string> ids;
  if (!list.is_array()) return ids;
  for (const auto& entry : list) {
    std::string id = str(entry, "Id");
    if (!id.empty()) ids.push_back(std::move(id));
  }
  return ids;
}

std::optional<std::string> streamedError(const std::string& body) {
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    if (j.contains("errorDetail") || j.contains("error")) {
      std::string message = str(objectAt(j, "errorDetail"), "message");
      if (message.empty()) message = str(j, "error");
      return message.empty() ? "unknown error" : message;
    }
  }
  return std::nullopt;
}

}  // namespace daemonlet::runtime::docker
