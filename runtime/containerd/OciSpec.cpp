#include "runtime/containerd/OciSpec.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace daemonlet::runtime::containerd {
namespace {

using nlohmann::json;

const char* const kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const char* const kHealthAnnotation = "io.daemonlet.healthcheck";

// containerd's defaultUnixCaps (oci/spec.go), the same 14 Docker grants.
const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER", "CAP_MKNOD",            "CAP_NET_RAW",    "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP",      "CAP_SETPCAP", "CAP_KILL",   "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"};

// Every capability runc knows on Linux 5.x, for privileged containers and "ALL".
const std::vector<std::string> kAllCaps = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};

std::vector<std::string> strings(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array())
    for (const auto& v : j[key]) if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::string capName(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  return name.rfind("CAP_", 0) == 0 ? name : "CAP_" + name;
}

std::vector<std::string> capabilities(const ContainerSpec& spec) {
  if (spec.privileged) return kAllCaps;
  std::vector<std::string> caps = kDefaultCaps;
  for (const auto& drop : spec.capDrop) {
    if (capName(drop) == "CAP_ALL") caps.clear();
    else std::erase(caps, capName(drop));
  }
  for (const auto& add : spec.capAdd) {
    if (capName(add) == "CAP_ALL") return kAllCaps;
    if (std::find(caps.begin(), caps.end(), capName(add)) == caps.end()) caps.push_back(capName(add));
  }
  return caps;
}

// "0", "1000:1000", "root". Names other than root live in the image's /etc/passwd, which
// only the snapshot holds; Docker reads it, we do not yet.
Result<json> user(const std::string& text) {
  if (text.empty() || text == "root" || text == "0") return json{{"uid", 0}, {"gid", 0}};
  const auto colon = text.find(':');
  const std::string u = text.substr(0, colon), g = colon == std::string::npos ? u : text.substr(colon + 1);
  auto numeric = [](const std::string& s) { return !s.empty() && std::all_of(s.begin(), s.end(), ::isdigit); };
  if (numeric(u) && numeric(g)) return json{{"uid", std::stoll(u)}, {"gid", std::stoll(g)}};
  if (u == "root" && (g == "root" || numeric(g))) return json{{"uid", 0}, {"gid", g == "root" ? 0 : std::stoll(g)}};
  return Error{Error::Code::Unsupported,
               fmt::format("user \"{}\": the containerd adapter takes numeric uid[:gid] (or root); user names are not resolved", text)};
}

json mount(const std::string& dest, const std::string& type, const std::string& source, std::vector<std::string> options) {
  return {{"destination", dest}, {"type", type}, {"source", source}, {"options", std::move(options)}};
}

std::vector<std::string> mergedEnv(const ImageConfig& image, const std::vector<std::string>& overrides) {
  std::vector<std::string> env = image.env;
  auto keyOf = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  for (const auto& kv : overrides) {
    auto same = std::find_if(env.begin(), env.end(), [&](const std::string& e) { return keyOf(e) == keyOf(kv); });
    if (same != env.end()) *same = kv;
    else env.push_back(kv);
  }
  if (std::none_of(env.begin(), env.end(), [&](const std::string& e) { return keyOf(e) == "PATH"; })) env.insert(env.begin(), kDefaultPath);
  return env;
}

}  // namespace

Result<ImageConfig> parseImageConfig(const json& doc) {
  if (!doc.is_object()) return Error{Error::Code::Protocol, "image config is not a JSON object"};
  ImageConfig out;
  const json config = doc.value("config", json::object());
  if (config.is_object()) {
    out.env = strings(config, "Env");
    out.entrypoint = strings(config, "Entrypoint");
    out.cmd = strings(config, "Cmd");
    out.workingDir = config.value("WorkingDir", std::string());
    out.user = config.value("User", std::string());
  }
  const json rootfs = doc.value("rootfs", json::object());
  if (rootfs.is_object()) out.diffIds = strings(rootfs, "diff_ids");
  if (out.diffIds.empty()) return Error{Error::Code::Protocol, "image config has no rootfs.diff_ids"};
  return out;
}

std::vector<std::string> probeArgs(const std::vector<std::string>& test) {
  if (test.empty() || test[0] == "NONE") return {};
  if (test[0] == "CMD-SHELL") return test.size() > 1 ? std::vector<std::string>{"/bin/sh", "-c", test[1]} : std::vector<std::string>{};
  if (test[0] == "CMD") return {test.begin() + 1, test.end()};
  return test;
}

std::string encodeHealthCheck(const HealthCheckSpec& c) {
  return json{{"test", c.test}, {"intervalMs", c.interval.count()}, {"timeoutMs", c.timeout.count()},
              {"startPeriodMs", c.startPeriod.count()}, {"retries", c.retries}}.dump();
}

std::optional<HealthCheckSpec> decodeHealthCheck(const json& spec) {
  const auto annotations = spec.value("annotations", json::object());
  if (!annotations.is_object() || !annotations.contains(kHealthAnnotation)) return std::nullopt;
  auto j = json::parse(annotations[kHealthAnnotation].get<std::string>(), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  HealthCheckSpec c;
  c.test = strings(j, "test");
  c.interval = std::chrono::milliseconds(j.value("intervalMs", 30000));
  c.timeout = std::chrono::milliseconds(j.value("timeoutMs", 5000));
  c.startPeriod = std::chrono::milliseconds(j.value("startPeriodMs", 0));
  c.retries = j.value("retries", 3);
  if (probeArgs(c.test).empty()) return std::nullopt;
  return c;
}

Result<json> buildSpec(const ContainerSpec& spec, const ImageConfig& image, const SpecPlacement& placement) {
  const std::string what = fmt::format("container {}", spec.name);
  if (spec.init) return Error{Error::Code::Unsupported, what + ": initProcessEnabled (an init process) is not supported on containerd yet"};
  if (!spec.ports.empty() && spec.networkMode != "host")
    return Error{Error::Code::Unsupported, what + ": port mappings need bridge networking, which the containerd adapter does not provide yet"};
  if (!spec.volumesFrom.empty()) return Error{Error::Code::Unsupported, what + ": volumesFrom is not supported on containerd yet"};
  const bool hostNetwork = spec.networkMode == "host";
  if (!hostNetwork && spec.networkMode != "none")
    return Error{Error::Code::Unsupported,
                 fmt::format("{}: network mode \"{}\" is not supported on containerd yet (host and none are)", what, spec.networkMode)};

  std::vector<std::string> args = spec.entrypoint.empty() ? image.entrypoint : spec.entrypoint;
  // Docker: an entrypoint given in the definition drops the image's CMD.
  const std::vector<std::string>& cmd = !spec.command.empty() ? spec.command : (spec.entrypoint.empty() ? image.cmd : spec.command);
  args.insert(args.end(), cmd.begin(), cmd.end());
  if (args.empty()) return Error{Error::Code::Engine, what + ": no command: neither the definition nor the image names one"};

  auto who = user(spec.user.value_or(image.user));
  if (!who) return Error{who.error().code, what + ": " + who.error().message};
  const auto caps = capabilities(spec);

  json rlimits = json::array();
  bool nofileSet = false;
  for (const auto& u : spec.ulimits) {
    std::string name = u.name;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
    nofileSet = nofileSet || name == "NOFILE";
    rlimits.push_back({{"type", "RLIMIT_" + name}, {"hard", u.hard}, {"soft", u.soft}});
  }
  if (!nofileSet) rlimits.push_back({{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}});

  json process = {
      {"terminal", false},
      {"user", who.value()},
      {"args", args},
      {"env", mergedEnv(image, spec.env)},
      {"cwd", spec.workingDir.value_or(image.workingDir.empty() ? "/" : image.workingDir)},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"rlimits", rlimits},
      {"noNewPrivileges", !spec.privileged},
  };

  json mounts = json::array({
      mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", spec.privileged ? "rw" : "ro"}),
      mount("/run", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      // What Docker adds: the container's own cgroups, read-only, so limits are visible inside.
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", spec.privileged ? "rw" : "ro"}),
  });
  if (hostNetwork) {
    mounts.push_back(mount("/etc/resolv.conf", "bind", "/etc/resolv.conf", {"rbind", "ro"}));
    mounts.push_back(mount("/etc/hosts", "bind", "/etc/hosts", {"rbind", "ro"}));
  }
  for (const auto& m : spec.mounts) {
    switch (m.type) {
      case Mount::Type::Bind:
        mounts.push_back(mount(m.target, "bind", m.source, {"rbind", "rprivate", m.readOnly ? "ro" : "rw"}));
        break;
      case Mount::Type::Tmpfs: {
        std::vector<std::string> options = {"nosuid", "nodev", "noexec"};
        if (m.tmpfsSizeBytes > 0) options.push_back(fmt::format("size={}", m.tmpfsSizeBytes));
        options.insert(options.end(), m.tmpfsOptions.begin(), m.tmpfsOptions.end());
        mounts.push_back(mount(m.target, "tmpfs", "tmpfs", options));
        break;
      }
      case Mount::Type::Volume:
        return Error{Error::Code::Unsupported, fmt::format("{}: named volume {} at {}: volumes are not supported on containerd yet", what, m.source, m.target)};
    }
  }

  json namespaces = json::array({{{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}});
  if (spec.pidMode != "host") namespaces.push_back({{"type", "pid"}});
  if (!hostNetwork) namespaces.push_back({{"type", "network"}});

  json resources = {{"devices", json::array({{{"allow", spec.privileged}, {"access", "rwm"}}})}};
  json memory = json::object();
  if (spec.memoryBytes) memory["limit"] = *spec.memoryBytes;
  if (spec.memoryReservationBytes) memory["reservation"] = *spec.memoryReservationBytes;
  if (!memory.empty()) resources["memory"] = memory;
  json cpu = json::object();
  if (spec.cpuShares > 0) cpu["shares"] = spec.cpuShares;
  if (spec.nanoCpus) {
    cpu["period"] = 100000;
    cpu["quota"] = *spec.nanoCpus * 100000 / 1'000'000'000;
  }
  if (!cpu.empty()) resources["cpu"] = cpu;

  json linux = {
      {"namespaces", namespaces},
      {"resources", resources},
      {"cgroupsPath", placement.cgroupsPath},
  };
  if (!spec.privileged) {
    linux["maskedPaths"] = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"};
    linux["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
  }

  json out = {
      {"ociVersion", "1.0.2-dev"},
      {"process", process},
      {"root", {{"path", "rootfs"}, {"readonly", spec.readOnlyRootfs}}},
      {"mounts", mounts},
      {"linux", linux},
      {"annotations", json::object()},
  };
  if (!hostNetwork) out["hostname"] = placement.hostname;
  if (spec.healthCheck && !probeArgs(spec.healthCheck->test).empty()) out["annotations"][kHealthAnnotation] = encodeHealthCheck(*spec.healthCheck);
  return out;
}

AppliedLimits limitsOf(const json& spec) {
  AppliedLimits out;
  const json resources = spec.value("/linux/resources"_json_pointer, json::object());
  if (!resources.is_object()) return out;
  if (auto m = resources.value("/memory/limit"_json_pointer, json()); m.is_number()) out.memoryBytes = m.get<std::int64_t>();
  if (auto s = resources.value("/cpu/shares"_json_pointer, json()); s.is_number()) out.cpuShares = s.get<std::int64_t>();
  auto quota = resources.value("/cpu/quota"_json_pointer, json());
  auto period = resources.value("/cpu/period"_json_pointer, json());
  if (quota.is_number() && period.is_number() && period.get<std::int64_t>() > 0)
    out.nanoCpus = quota.get<std::int64_t>() * 1'000'000'000 / period.get<std::int64_t>();
  return out;
}

}  // namespace daemonlet::runtime::containerd
