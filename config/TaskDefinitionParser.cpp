#include "config/TaskDefinitionParser.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "config/Sha256.h"
#include "config/TaskDefinitionReader.h"

namespace daemonlet::config {
namespace {

constexpr std::int64_t kMaxCpuUnits = 1024 * 1024;          // 1024 vCPU
constexpr std::int64_t kMaxMemoryMiB = 4LL * 1024 * 1024;   // 4 TiB
constexpr std::int64_t kMinContainerMemoryMiB = 6;          // Docker refuses less
constexpr std::int64_t kMaxTimeoutSeconds = 3600;

using KeySet = std::set<std::string, std::less<>>;

const KeySet kTaskFields = {"family", "revision", "cpu", "memory", "networkMode", "pidMode",
                            "volumes", "containerDefinitions", "critical", "restart",
                            "proxyConfiguration"};
// Ignored with one warning. Some are still checked below where a value, rather than the
// field, would change what runs (placementConstraints, runtimePlatform, tags).
const KeySet kTaskIgnored = {
    "executionRoleArn", "taskRoleArn", "requiresCompatibilities", "compatibilities",
    "taskDefinitionArn", "status", "registeredAt", "registeredBy", "deregisteredAt",
    "requiresAttributes", "placementConstraints", "ipcMode",
    "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "tags",
    "enableFaultInjection"};
const KeySet kContainerFields = {
    "name", "image", "essential", "command", "entryPoint", "environment", "environmentFiles",
    "cpu", "memory", "memoryReservation", "portMappings", "mountPoints", "volumesFrom", "user",
    "privileged", "readonlyRootFilesystem", "workingDirectory", "stopTimeout", "startTimeout",
    "dependsOn", "healthCheck", "logConfiguration", "ulimits", "linuxParameters",
    "restartPolicy", "secrets", "dockerSecurityOptions", "disableNetworking"};
// Ignored with one warning: each only makes a task fail loudly or run with less (no GPU, a
// missing device, default sysctls, this host's registry credentials), never quietly with
// other data or weaker isolation. Those are errors instead (see readContainer).
const KeySet kContainerIgnored = {
    "repositoryCredentials", "links", "hostname", "dnsServers", "dnsSearchDomains",
    "extraHosts", "interactive", "pseudoTerminal", "dockerLabels",
    "systemControls", "resourceRequirements", "firelensConfiguration", "credentialSpecs",
    "versionConsistency"};

// Docker's reference grammar (distribution/reference): [domain/]path[:tag][@digest]. A
// placeholder such as <IMAGE1_NAME> or ${repo}:latest fails here, at validate time, instead
// of at the first pull.
bool validImageReference(const std::string& s) {
  static const std::regex reference(
      R"((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?)"
      R"([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
      R"((?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?)"
      R"((?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?)");
  return s.size() <= 255 && std::regex_match(s, reference);
}

// A present value other than an empty list or false: what "set" means for a field whose
// empty form describe output writes everywhere.
bool isSet(const YAML::Node& v) {
  if (isAbsent(v)) return false;
  if (v.IsSequence() || v.IsMap()) return v.size() > 0;
  return !(v.IsScalar() && !isQuoted(v) && (v.Scalar() == "false" || v.Scalar() == "False" || v.Scalar() == "FALSE"));
}

bool validName(const std::string& s) {
  static const std::regex name("[A-Za-z0-9][A-Za-z0-9_-]{0,254}");
  return std::regex_match(s, name);
}

// The family a file's name gives a bare containerDefinitions list: its stem, with what a
// family may not hold replaced by '-'. Empty when no file name gives one.
std::string familyOfFileName(const std::string& origin) {
  const std::filesystem::path path(origin);
  if (!path.has_extension() || (path.extension() != ".json" && path.extension() != ".yaml" && path.extension() != ".yml")) return "";
  std::string family = path.stem().string().substr(0, 255);
  for (char& c : family) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '-';
  }
  return validName(family) ? family : "";
}

std::string at(const std::string& prefix, std::size_t i) { return fmt::format("{}[{}]", prefix, i); }

// The parts of one definition, read field by field. Each method reports its own problems
// and leaves defaults where a value was bad, so that one pass finds every error.
class DefinitionReader {
 public:
  explicit DefinitionReader(FieldReader& r) : r_(r) {}

  std::optional<TaskDefinition> read(const YAML::Node& node, const std::string& prefix) {
    const std::string self = prefix.empty() ? "(document)" : prefix;
    if (node.IsSequence() && node.size() > 0 && node[0].IsMap() && !isAbsent(node[0]["image"])) {
      // `aws ecs register-task-definition --family F --container-definitions file://x.json`
      // takes such a file with the family beside it; here the file's name says it.
      if (const std::string family = familyOfFileName(r_.file()); prefix.empty() && !family.empty()) {
        r_.warning(node, self, fmt::format("a bare containerDefinitions list (as register-task-definition --container-definitions "
                                           "and Terraform take): read as a task definition with family '{}', from the file name", family));
        YAML::Node wrapped(YAML::NodeType::Map);
        wrapped["family"] = family;
        wrapped["family"].SetTag("!");  // a string, whatever it looks like
        wrapped["containerDefinitions"] = node;
        return read(wrapped, prefix);
      }
      r_.error(node, self, "expected an object, got a list: this is a bare containerDefinitions list (as Terraform's "
                           "container_definitions takes); put it in a task definition: {\"family\": ..., \"containerDefinitions\": [...]}");
      return std::nullopt;
    }
    if (!r_.expectMap(node, self)) return std::nullopt;
    // `aws ecs describe-task-definition` and `register-task-definition` print the definition
    // inside {"taskDefinition": ..., "tags": [...]}; people save that output as is.
    if (!isAbsent(node["taskDefinition"]) && isAbsent(node["containerDefinitions"])) {
      r_.checkKeys(node, prefix, {"taskDefinition"}, {"tags"});
      checkTags(node["tags"], joinField(prefix, "tags"));
      const std::string inner = joinField(prefix, "taskDefinition");
      if (!r_.expectMap(node["taskDefinition"], inner)) return std::nullopt;
      return read(node["taskDefinition"], inner);
    }
    if (isAbsent(node["containerDefinitions"]) && (!isAbsent(node["AWSTemplateFormatVersion"]) || !isAbsent(node["Resources"]))) {
      r_.error(node, self, "this is a CloudFormation template, not a task definition: write the TaskDefinition "
                           "resource's properties as ECS JSON (camelCase keys, no Ref or Fn:: functions)");
      return std::nullopt;
    }
    TaskDefinition def;
    r_.checkKeys(node, prefix, kTaskFields, kTaskIgnored);
    checkTaskOnlyFields(node, prefix);

    const std::string familyField = joinField(prefix, "family");
    if (auto family = r_.string(node["family"], familyField)) {
      def.family = *family;
      if (!validName(def.family)) {
        r_.error(node["family"], familyField,
                 fmt::format("'{}' is not a valid family: use 1-255 letters, digits, '-' or '_'",
                             def.family));
      }
    } else if (isAbsent(node["family"])) {
      r_.error(node, familyField, "required field is missing");
    }
    if (auto revision = r_.integer(node["revision"], joinField(prefix, "revision"))) {
      if (*revision < 0) r_.error(node["revision"], joinField(prefix, "revision"), "must not be negative");
      else def.revision = *revision;
    }
    def.cpu = taskSize(node["cpu"], joinField(prefix, "cpu"), true);
    def.memory = taskSize(node["memory"], joinField(prefix, "memory"), false);
    readNetworkMode(node["networkMode"], joinField(prefix, "networkMode"), def);
    if (auto pid = r_.string(node["pidMode"], joinField(prefix, "pidMode"))) {
      if (*pid != "host" && *pid != "task") {
        r_.error(node["pidMode"], joinField(prefix, "pidMode"),
                 fmt::format("expected host or task, got \"{}\"", *pid));
      } else {
        def.pidMode = *pid;
      }
    }
    if (auto critical = r_.boolean(node["critical"], joinField(prefix, "critical"))) def.critical = *critical;
    if (!isAbsent(node["restart"])) def.restart = readTaskRestart(node["restart"], r_, joinField(prefix, "restart"));
    readVolumes(node["volumes"], joinField(prefix, "volumes"), def);

    const std::string containersField = joinField(prefix, "containerDefinitions");
    const YAML::Node containers = node["containerDefinitions"];
    if (isAbsent(containers)) {
      r_.error(node, containersField, "required field is missing");
    } else if (r_.expectList(containers, containersField)) {
      if (containers.size() == 0) r_.error(containers, containersField, "needs at least one container");
      for (std::size_t i = 0; i < containers.size(); ++i) {
        def.containers.push_back(readContainer(containers[i], at(containersField, i)));
        containerNodes_.push_back(containers[i]);
      }
    }
    checkDefinition(def, node, prefix);
    def.canonicalJson = canonicalJson(node, r_);
    def.hash = sha256Hex(def.canonicalJson).substr(0, 12);
    if (const std::string legacy = legacyCanonicalJson(node, r_); legacy != def.canonicalJson) def.legacyHash = sha256Hex(legacy).substr(0, 12);
    return def;
  }

 private:
  // Task-level cpu/memory take numbers or ECS's strings: "256", "1 vCPU", "2 GB".
  std::optional<std::int64_t> taskSize(const YAML::Node& v, const std::string& field, bool cpu) {
    if (isAbsent(v)) return std::nullopt;
    std::optional<std::int64_t> out;
    // A plain YAML scalar such as `cpu: 1 vCPU` is a string too; plain numbers stay numbers.
    static const std::regex number(R"([-+]?[0-9.eE+-]+)");
    if (v.IsScalar() && (isQuoted(v) || !std::regex_match(v.Scalar(), number))) {
      static const std::regex plain(R"(\s*([0-9]+)\s*)");
      static const std::regex vcpu(R"(\s*([0-9]*\.?[0-9]+)\s*vCPU\s*)", std::regex::icase);
      static const std::regex gb(R"(\s*([0-9]*\.?[0-9]+)\s*GB\s*)", std::regex::icase);
      std::smatch m;
      const std::string& s = v.Scalar();
      const double limit = static_cast<double>(cpu ? kMaxCpuUnits : kMaxMemoryMiB);
      double value = -1;
      if (std::regex_match(s, m, plain) || (cpu && std::regex_match(s, m, vcpu)) || (!cpu && std::regex_match(s, m, gb))) {
        value = std::strtod(m[1].str().c_str(), nullptr) * (std::regex_match(s, plain) ? 1 : 1024);
      } else {
        r_.error(v, field, fmt::format("expected a number{}, got {}",
                                       cpu ? " or \"N vCPU\"" : " or \"N GB\"", describe(v)));
        return std::nullopt;
      }
      // Clamp before converting: a double past int64's range is undefined behaviour.
      out = static_cast<std::int64_t>(std::min(value, limit + 1));
    } else {
      out = r_.integer(v, field);
    }
    if (out) checkSize(v, field, *out, cpu, 1);
    return out;
  }

  void checkSize(const YAML::Node& v, const std::string& field, std::int64_t value, bool cpu,
                 std::int64_t minimum) {
    const std::int64_t maximum = cpu ? kMaxCpuUnits : kMaxMemoryMiB;
    if (value < minimum) {
      r_.error(v, field, fmt::format("must be at least {}{}, got {}", minimum, cpu ? " CPU units" : " MiB", value));
    } else if (value > maximum) {
      r_.error(v, field, fmt::format("{} is absurdly large (limit {}{})", value, maximum,
                                     cpu ? " CPU units = 1024 vCPU" : " MiB = 4 TiB"));
    }
  }

  void readNetworkMode(const YAML::Node& v, const std::string& field, TaskDefinition& def) {
    auto mode = r_.string(v, field);
    if (!mode) return;
    if (*mode == "bridge") def.networkMode = NetworkMode::Bridge;
    else if (*mode == "host") def.networkMode = NetworkMode::Host;
    else if (*mode == "none") def.networkMode = NetworkMode::None;
    else if (*mode == "awsvpc") def.networkMode = NetworkMode::Awsvpc;
    else r_.error(v, field, fmt::format("expected host, bridge, none or awsvpc, got \"{}\"", *mode));
  }

  void readVolumes(const YAML::Node& list, const std::string& field, TaskDefinition& def) {
    if (isAbsent(list) || !r_.expectList(list, field)) return;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const YAML::Node v = list[i];
      const std::string f = at(field, i);
      if (!r_.expectMap(v, f)) continue;
      r_.checkKeys(v, f, {"name", "host", "dockerVolumeConfiguration", "efsVolumeConfiguration",
                          "fsxWindowsFileServerVolumeConfiguration", "configuredAtLaunch"}, {});
      // Ignoring these would hand the application an empty local volume where it expects its
      // shared file system: it would run, and write its data where nobody reads it.
      if (!isAbsent(v["efsVolumeConfiguration"]))
        r_.error(v["efsVolumeConfiguration"], joinField(f, "efsVolumeConfiguration"),
                 "EFS volumes are not supported on this host: the application would write to an empty local volume "
                 "instead of the EFS file system; mount it on the host and use host.sourcePath");
      if (!isAbsent(v["fsxWindowsFileServerVolumeConfiguration"]))
        r_.error(v["fsxWindowsFileServerVolumeConfiguration"], joinField(f, "fsxWindowsFileServerVolumeConfiguration"),
                 "FSx for Windows volumes are not supported on this host: the application would write to an empty "
                 "local volume instead of the FSx file system");
      if (isSet(v["configuredAtLaunch"]))
        r_.error(v["configuredAtLaunch"], joinField(f, "configuredAtLaunch"),
                 "ECS attaches such a volume (EBS) when it launches the task; nothing here configures it at launch, and "
                 "the application would write to an empty local volume");
      else r_.boolean(v["configuredAtLaunch"], joinField(f, "configuredAtLaunch"));
      Volume vol;
      if (auto name = r_.string(v["name"], joinField(f, "name"))) vol.name = *name;
      else if (isAbsent(v["name"])) r_.error(v, joinField(f, "name"), "required field is missing");
      for (const auto& other : def.volumes) {
        if (!vol.name.empty() && other.name == vol.name)
          r_.error(v["name"], joinField(f, "name"), fmt::format("volume '{}' is defined twice", vol.name));
      }
      if (!isAbsent(v["host"]) && r_.expectMap(v["host"], joinField(f, "host"))) {
        const std::string pf = joinField(f, "host.sourcePath");
        if (auto path = r_.string(v["host"]["sourcePath"], pf)) {
          if (path->empty() || path->front() != '/') r_.error(v["host"]["sourcePath"], pf, fmt::format("must be an absolute path, got \"{}\"", *path));
          vol.hostSourcePath = *path;
        }
      }
      const YAML::Node dv = v["dockerVolumeConfiguration"];
      const std::string df = joinField(f, "dockerVolumeConfiguration");
      if (!isAbsent(dv) && r_.expectMap(dv, df)) {
        r_.checkKeys(dv, df, {"scope", "driver", "driverOpts", "labels", "autoprovision"}, {});
        DockerVolumeConfiguration c;
        if (auto scope = r_.string(dv["scope"], joinField(df, "scope"))) {
          if (*scope == "shared") c.shared = true;
          else if (*scope != "task") r_.error(dv["scope"], joinField(df, "scope"), fmt::format("expected task or shared, got \"{}\"", *scope));
        }
        if (auto driver = r_.string(dv["driver"], joinField(df, "driver"))) c.driver = *driver;
        if (auto opts = r_.stringMap(dv["driverOpts"], joinField(df, "driverOpts"))) c.driverOpts = *opts;
        if (auto labels = r_.stringMap(dv["labels"], joinField(df, "labels"))) c.labels = *labels;
        if (auto ap = r_.boolean(dv["autoprovision"], joinField(df, "autoprovision"))) c.autoprovision = *ap;
        if (vol.hostSourcePath) r_.error(dv, df, "a volume takes either host or dockerVolumeConfiguration, not both");
        vol.dockerVolume = c;
      }
      def.volumes.push_back(std::move(vol));
    }
  }

  ContainerDefinition readContainer(const YAML::Node& node, const std::string& f) {
    ContainerDefinition c;
    if (!r_.expectMap(node, f)) return c;
    r_.checkKeys(node, f, kContainerFields, kContainerIgnored);
    if (auto name = r_.string(node["name"], joinField(f, "name"))) {
      c.name = *name;
      if (!validName(c.name))
        r_.error(node["name"], joinField(f, "name"), fmt::format("'{}' is not a valid container name: use letters, digits, '-' or '_'", c.name));
    } else if (isAbsent(node["name"])) {
      r_.error(node, joinField(f, "name"), "required field is missing");
    }
    if (auto image = r_.string(node["image"], joinField(f, "image"))) {
      c.image = *image;
      if (c.image.empty()) r_.error(node["image"], joinField(f, "image"), "must not be empty");
      else if (!validImageReference(c.image))
        r_.error(node["image"], joinField(f, "image"),
                 fmt::format("\"{}\" is not an image reference Docker accepts ([registry/]name[:tag][@digest], "
                             "lower-case name): is a template placeholder left in?", c.image));
    } else if (isAbsent(node["image"])) {
      r_.error(node, joinField(f, "image"), "required field is missing");
    }
    if (auto e = r_.boolean(node["essential"], joinField(f, "essential"))) c.essential = *e;
    if (auto v = r_.stringList(node["command"], joinField(f, "command"))) c.command = *v;
    if (auto v = r_.stringList(node["entryPoint"], joinField(f, "entryPoint"))) c.entryPoint = *v;
    readEnvironment(node["environment"], joinField(f, "environment"), c);
    readEnvironmentFiles(node["environmentFiles"], joinField(f, "environmentFiles"), c);
    readSecrets(node["secrets"], joinField(f, "secrets"), c.secrets);
    // Dropping these would run the container less confined than its author declared.
    if (isSet(node["dockerSecurityOptions"]) && r_.stringList(node["dockerSecurityOptions"], joinField(f, "dockerSecurityOptions")))
      r_.error(node["dockerSecurityOptions"], joinField(f, "dockerSecurityOptions"),
               "security options are not supported: the container would run with weaker confinement than declared");
    else if (!isAbsent(node["dockerSecurityOptions"])) r_.stringList(node["dockerSecurityOptions"], joinField(f, "dockerSecurityOptions"));
    if (auto off = r_.boolean(node["disableNetworking"], joinField(f, "disableNetworking")); off && *off)
      r_.error(node["disableNetworking"], joinField(f, "disableNetworking"),
               "not supported: the container would have a network it was declared not to have; use networkMode none");
    c.cpu = r_.integer(node["cpu"], joinField(f, "cpu"));
    if (c.cpu) checkSize(node["cpu"], joinField(f, "cpu"), *c.cpu, true, 0);
    c.memory = r_.integer(node["memory"], joinField(f, "memory"));
    if (c.memory) checkSize(node["memory"], joinField(f, "memory"), *c.memory, false, kMinContainerMemoryMiB);
    c.memoryReservation = r_.integer(node["memoryReservation"], joinField(f, "memoryReservation"));
    if (c.memoryReservation) checkSize(node["memoryReservation"], joinField(f, "memoryReservation"), *c.memoryReservation, false, kMinContainerMemoryMiB);
    if (c.memory && c.memoryReservation && *c.memoryReservation > *c.memory) {
      r_.error(node["memoryReservation"], joinField(f, "memoryReservation"),
               fmt::format("{} MiB is more than memory ({} MiB): the soft limit must not exceed the hard limit",
                           *c.memoryReservation, *c.memory));
    }
    readPortMappings(node["portMappings"], joinField(f, "portMappings"), c);
    readMountPoints(node["mountPoints"], joinField(f, "mountPoints"), c);
    readVolumesFrom(node["volumesFrom"], joinField(f, "volumesFrom"), c);
    c.user = r_.string(node["user"], joinField(f, "user"));
    if (auto v = r_.boolean(node["privileged"], joinField(f, "privileged"))) c.privileged = *v;
    if (auto v = r_.boolean(node["readonlyRootFilesystem"], joinField(f, "readonlyRootFilesystem"))) c.readonlyRootFilesystem = *v;
    c.workingDirectory = r_.string(node["workingDirectory"], joinField(f, "workingDirectory"));
    c.stopTimeoutSeconds = seconds(node["stopTimeout"], joinField(f, "stopTimeout"));
    c.startTimeoutSeconds = seconds(node["startTimeout"], joinField(f, "startTimeout"));
    readDependsOn(node["dependsOn"], joinField(f, "dependsOn"), c);
    readHealthCheck(node["healthCheck"], joinField(f, "healthCheck"), c);
    readLogConfiguration(node["logConfiguration"], joinField(f, "logConfiguration"), c);
    readUlimits(node["ulimits"], joinField(f, "ulimits"), c);
    readLinuxParameters(node["linuxParameters"], joinField(f, "linuxParameters"), c);
    readRestartPolicy(node["restartPolicy"], joinField(f, "restartPolicy"), c);
    return c;
  }

  std::optional<int> seconds(const YAML::Node& v, const std::string& field,
                             std::int64_t minimum = 0, std::int64_t maximum = kMaxTimeoutSeconds) {
    auto s = r_.integer(v, field);
    if (!s) return std::nullopt;
    if (*s < minimum || *s > maximum) {
      r_.error(v, field, fmt::format("must be between {} and {} seconds, got {}", minimum, maximum, *s));
      return std::nullopt;
    }
    return static_cast<int>(*s);
  }

  // Runs `each` over the objects of a list, checking keys; skips entries of the wrong type.
  void forEachObject(const YAML::Node& list, const std::string& field, const KeySet& keys,
                     const std::function<void(const YAML::Node&, const std::string&)>& each) {
    if (isAbsent(list) || !r_.expectList(list, field)) return;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string f = at(field, i);
      if (!r_.expectMap(list[i], f)) continue;
      r_.checkKeys(list[i], f, keys, {});
      each(list[i], f);
    }
  }

  std::optional<std::string> required(const YAML::Node& parent, const char* key, const std::string& f) {
    if (isAbsent(parent[key])) {
      r_.error(parent, joinField(f, key), "required field is missing");
      return std::nullopt;
    }
    return r_.string(parent[key], joinField(f, key));
  }

  // Only the reference is kept: the agent resolves it from secrets.directory before the
  // task's first container is created (agent/SecretDirectory.h).
  void readSecrets(const YAML::Node& list, const std::string& field, std::vector<Secret>& out) {
    forEachObject(list, field, {"name", "valueFrom"}, [&](const YAML::Node& e, const std::string& f) {
      auto name = required(e, "name", f);
      auto valueFrom = required(e, "valueFrom", f);
      if (name && name->empty()) r_.error(e["name"], joinField(f, "name"), "must not be empty");
      if (valueFrom && valueFrom->empty()) r_.error(e["valueFrom"], joinField(f, "valueFrom"), "must not be empty");
      if (name && valueFrom) out.push_back({*name, *valueFrom});
    });
  }

  // ECS resource tags do not apply here, but a map where ECS takes [{key, value}] is how a
  // template filled the wrong shape in: ECS would refuse it, so does this.
  void checkTags(const YAML::Node& tags, const std::string& field) {
    if (isAbsent(tags) || !r_.expectList(tags, field)) return;
    for (std::size_t i = 0; i < tags.size(); ++i) r_.expectMap(tags[i], at(field, i));
  }

  // Task-level ECS fields that are otherwise ignored, where a value would change what runs.
  void checkTaskOnlyFields(const YAML::Node& node, const std::string& prefix) {
    checkTags(node["tags"], joinField(prefix, "tags"));
    if (!isAbsent(node["proxyConfiguration"]))
      r_.error(node["proxyConfiguration"], joinField(prefix, "proxyConfiguration"),
               "an App Mesh proxy is not supported: nothing would redirect the task's traffic through it, so the "
               "application's traffic would bypass the proxy (and the encryption and policy it enforces)");
    const YAML::Node constraints = node["placementConstraints"];
    if (!isAbsent(constraints) && r_.expectList(constraints, joinField(prefix, "placementConstraints")) && constraints.size() > 0)
      r_.error(constraints, joinField(prefix, "placementConstraints"),
               "placement constraints are not evaluated on one host: the task would run on a host it excludes; "
               "choose hosts with the definitions directory or the control endpoint instead");
    const YAML::Node platform = node["runtimePlatform"];
    const YAML::Node os = !isAbsent(platform) && platform.IsMap() ? platform["operatingSystemFamily"] : YAML::Node();
    if (auto family = r_.string(os, joinField(prefix, "runtimePlatform.operatingSystemFamily")); family && *family != "LINUX")
      r_.error(os, joinField(prefix, "runtimePlatform.operatingSystemFamily"),
               fmt::format("{} needs a Windows host; daemonlet runs Linux containers", *family));
  }

  void readEnvironment(const YAML::Node& list, const std::string& field, ContainerDefinition& c) {
    forEachObject(list, field, {"name", "value"}, [&](const YAML::Node& e, const std::string& f) {
      auto name = required(e, "name", f);
      auto value = r_.string(e["value"], joinField(f, "value"));
      if (name) c.environment.push_back({*name, value.value_or("")});
    });
  }

  void readEnvironmentFiles(const YAML::Node& list, const std::string& field, ContainerDefinition& c) {
    forEachObject(list, field, {"value", "type"}, [&](const YAML::Node& e, const std::string& f) {
      auto type = r_.string(e["type"], joinField(f, "type"));
      if (type && *type != "local") {
        r_.error(e["type"], joinField(f, "type"),
                 fmt::format("only local environment files are supported, got \"{}\"", *type));
        return;
      }
      auto value = required(e, "value", f);
      if (!value) return;
      if (value->empty() || value->front() != '/') {
        r_.error(e["value"], joinField(f, "value"), fmt::format("must be an absolute local path, got \"{}\"", *value));
        return;
      }
      c.environmentFiles.push_back(*value);
    });
  }

  void readPortMappings(const YAML::Node& list, const std::string& field, ContainerDefinition& c) {
    forEachObject(list, field, {"containerPort", "hostPort", "protocol", "name", "appProtocol", "containerPortRange"},
                  [&](const YAML::Node& e, const std::string& f) {
      PortMapping p;
      if (isAbsent(e["containerPort"])) r_.error(e, joinField(f, "containerPort"), "required field is missing");
      if (auto port = r_.integer(e["containerPort"], joinField(f, "containerPort"))) {
        if (*port < 1 || *port > 65535) r_.error(e["containerPort"], joinField(f, "containerPort"), fmt::format("must be between 1 and 65535, got {}", *port));
        p.containerPort = static_cast<int>(*port);
      }
      if (auto port = r_.integer(e["hostPort"], joinField(f, "hostPort"))) {
        if (*port < 0 || *port > 65535) r_.error(e["hostPort"], joinField(f, "hostPort"), fmt::format("must be between 0 and 65535, got {}", *port));
        p.hostPort = static_cast<int>(*port);
      }
      if (auto proto = r_.string(e["protocol"], joinField(f, "protocol"))) {
        if (*proto != "tcp" && *proto != "udp") r_.error(e["protocol"], joinField(f, "protocol"), fmt::format("expected tcp or udp, got \"{}\"", *proto));
        p.protocol = *proto;
      }
      c.portMappings.push_back(p);
    });
  }

  void readMountPoints(const YAML::Node& list, const std::string& field, ContainerDefinition& c) {
    forEachObject(list, field, {"sourceVolume", "containerPath", "readOnly"}, [&](const YAML::Node& e, const std::string& f) {
      MountPoint m;
      if (auto v = required(e, "sourceVolume", f)) m.sourceVolume = *v;
      if (auto v = required(e, "containerPath", f)) {
        m.containerPath = *v;
        if (v->empty() || v->front() != '/') r_.error(e["containerPath"], joinField(f, "containerPath"), fmt::format("must be an absolute path, got \"{}\"", *v));
      }
      if (auto v = r_.boolean(e["readOnly"], joinField(f, "readOnly"))) m.readOnly = *v;
      c.mountPoints.push_back(m);
      mountNodes_.push_back({e, f});
    });
  }

  void readVolumesFrom(const YAML::Node& list, const std::string& field, ContainerDefinition& c) {
    forEachObject(list, field, {"sourceContainer", "readOnly"}, [&](const YAML::Node& e, const std::string& f) {
      VolumeFrom v;
      if (auto s = required(e, "sourceContainer", f)) v.sourceContainer = *s;
      if (auto b = r_.boolean(e["readOnly"], joinField(f, "readOnly"))) v.readOnly = *b;
      c.volumesFrom.push_back(v);
      volumesFromNodes_.push_back({e, f});
    });
  }

  void readDependsOn(const YAML::Node& list, const std::string& field, ContainerDefinition& c) {
    forEachObject(list, field, {"containerName", "condition"}, [&](const YAML::Node& e, const std::string& f) {
      ContainerDependency d;
      if (auto s = required(e, "containerName", f)) d.containerName = *s;
      if (auto s = required(e, "condition", f)) {
        if (*s == "START") d.condition = DependencyCondition::Start;
        else if (*s == "COMPLETE") d.condition = DependencyCondition::Complete;
        else if (*s == "SUCCESS") d.condition = DependencyCondition::Success;
        else if (*s == "HEALTHY") d.condition = DependencyCondition::Healthy;
        else r_.error(e["condition"], joinField(f, "condition"), fmt::format("expected START, COMPLETE, SUCCESS or HEALTHY, got \"{}\"", *s));
      }
      c.dependsOn.push_back(d);
      dependsOnNodes_.push_back({e, f});
    });
  }

  void readHealthCheck(const YAML::Node& v, const std::string& f, ContainerDefinition& c) {
    if (isAbsent(v) || !r_.expectMap(v, f)) return;
    r_.checkKeys(v, f, {"command", "interval", "timeout", "retries", "startPeriod"}, {});
    HealthCheck h;
    if (isAbsent(v["command"])) r_.error(v, joinField(f, "command"), "required field is missing");
    if (auto cmd = r_.stringList(v["command"], joinField(f, "command"))) {
      h.command = *cmd;
      if (h.command.empty() || ((h.command[0] == "CMD" || h.command[0] == "CMD-SHELL") && h.command.size() < 2)) {
        r_.error(v["command"], joinField(f, "command"), "names no command to run");
      } else if (h.command[0] != "CMD" && h.command[0] != "CMD-SHELL") {
        // Docker would take the first word as the kind of test and refuse the container;
        // people write ["/healthcheck"] meaning "run this".
        h.command.insert(h.command.begin(), "CMD");
        std::vector<std::string> quoted;
        for (const auto& word : h.command) quoted.push_back(fmt::format("\"{}\"", word));
        r_.warning(v["command"], joinField(f, "command"),
                   fmt::format("does not start with \"CMD\" or \"CMD-SHELL\"; runs as [{}]", fmt::join(quoted, ", ")));
      }
    }
    if (auto s = seconds(v["interval"], joinField(f, "interval"), 5, 300)) h.intervalSeconds = *s;
    if (auto s = seconds(v["timeout"], joinField(f, "timeout"), 2, 60)) h.timeoutSeconds = *s;
    if (auto s = seconds(v["retries"], joinField(f, "retries"), 1, 10)) h.retries = *s;
    if (auto s = seconds(v["startPeriod"], joinField(f, "startPeriod"), 0, 300)) h.startPeriodSeconds = *s;
    c.healthCheck = h;
  }

  void readLogConfiguration(const YAML::Node& v, const std::string& f, ContainerDefinition& c) {
    if (isAbsent(v) || !r_.expectMap(v, f)) return;
    r_.checkKeys(v, f, {"logDriver", "options", "secretOptions"}, {});
    LogConfiguration l;
    if (auto d = required(v, "logDriver", f)) l.logDriver = *d;
    if (auto o = r_.stringMap(v["options"], joinField(f, "options"))) l.options = *o;
    readSecrets(v["secretOptions"], joinField(f, "secretOptions"), l.secretOptions);
    c.logConfiguration = l;
  }

  void readUlimits(const YAML::Node& list, const std::string& field, ContainerDefinition& c) {
    forEachObject(list, field, {"name", "softLimit", "hardLimit"}, [&](const YAML::Node& e, const std::string& f) {
      Ulimit u;
      if (auto s = required(e, "name", f)) u.name = *s;
      if (isAbsent(e["softLimit"])) r_.error(e, joinField(f, "softLimit"), "required field is missing");
      if (isAbsent(e["hardLimit"])) r_.error(e, joinField(f, "hardLimit"), "required field is missing");
      auto soft = r_.integer(e["softLimit"], joinField(f, "softLimit"));
      auto hard = r_.integer(e["hardLimit"], joinField(f, "hardLimit"));
      if (soft && hard && *soft > *hard) r_.error(e["softLimit"], joinField(f, "softLimit"), fmt::format("{} is above hardLimit {}", *soft, *hard));
      u.softLimit = soft.value_or(0);
      u.hardLimit = hard.value_or(0);
      c.ulimits.push_back(u);
    });
  }

  void readLinuxParameters(const YAML::Node& v, const std::string& f, ContainerDefinition& c) {
    if (isAbsent(v) || !r_.expectMap(v, f)) return;
    r_.checkKeys(v, f, {"capabilities", "initProcessEnabled", "tmpfs"},
                 {"devices", "sharedMemorySize", "maxSwap", "swappiness"});
    const YAML::Node caps = v["capabilities"];
    if (!isAbsent(caps) && r_.expectMap(caps, joinField(f, "capabilities"))) {
      r_.checkKeys(caps, joinField(f, "capabilities"), {"add", "drop"}, {});
      if (auto a = r_.stringList(caps["add"], joinField(f, "capabilities.add"))) c.linuxParameters.capabilitiesAdd = *a;
      if (auto d = r_.stringList(caps["drop"], joinField(f, "capabilities.drop"))) c.linuxParameters.capabilitiesDrop = *d;
    }
    if (auto b = r_.boolean(v["initProcessEnabled"], joinField(f, "initProcessEnabled"))) c.linuxParameters.initProcessEnabled = *b;
    forEachObject(v["tmpfs"], joinField(f, "tmpfs"), {"containerPath", "size", "mountOptions"}, [&](const YAML::Node& e, const std::string& tf) {
      TmpfsMount t;
      if (auto p = required(e, "containerPath", tf)) t.containerPath = *p;
      if (isAbsent(e["size"])) r_.error(e, joinField(tf, "size"), "required field is missing");
      if (auto s = r_.integer(e["size"], joinField(tf, "size"))) {
        t.sizeMiB = *s;
        checkSize(e["size"], joinField(tf, "size"), *s, false, 1);
      }
      if (auto o = r_.stringList(e["mountOptions"], joinField(tf, "mountOptions"))) t.mountOptions = *o;
      c.linuxParameters.tmpfs.push_back(t);
    });
  }

  void readRestartPolicy(const YAML::Node& v, const std::string& f, ContainerDefinition& c) {
    if (isAbsent(v) || !r_.expectMap(v, f)) return;
    r_.checkKeys(v, f, {"enabled", "ignoredExitCodes", "restartAttemptPeriod"}, {});
    if (auto b = r_.boolean(v["enabled"], joinField(f, "enabled"))) c.restartPolicy.enabled = *b;
    const YAML::Node codes = v["ignoredExitCodes"];
    if (!isAbsent(codes) && r_.expectList(codes, joinField(f, "ignoredExitCodes"))) {
      for (std::size_t i = 0; i < codes.size(); ++i) {
        if (auto code = r_.integer(codes[i], at(joinField(f, "ignoredExitCodes"), i)))
          c.restartPolicy.ignoredExitCodes.push_back(static_cast<int>(*code));
      }
    }
    c.restartPolicy.restartAttemptPeriodSeconds = seconds(v["restartAttemptPeriod"], joinField(f, "restartAttemptPeriod"), 60, 1800);
  }

  // Rules that look across fields: names must resolve, dependencies must not loop.
  void checkDefinition(const TaskDefinition& def, const YAML::Node& node, const std::string& prefix) {
    const std::string containersField = joinField(prefix, "containerDefinitions");
    bool anyEssential = false;
    std::int64_t reservedMemory = 0;
    std::int64_t reservedCpu = 0;
    for (std::size_t i = 0; i < def.containers.size(); ++i) {
      const auto& c = def.containers[i];
      const YAML::Node& cn = containerNodes_[i];
      anyEssential = anyEssential || c.essential;
      reservedMemory += c.memoryReservation ? *c.memoryReservation : c.memory.value_or(0);
      reservedCpu += c.cpu.value_or(0);
      // ECS's rules: no container may be given more memory than the whole task has.
      if (def.memory) {
        for (const char* key : {"memory", "memoryReservation"}) {
          const auto& value = std::string_view(key) == "memory" ? c.memory : c.memoryReservation;
          if (value && *value > *def.memory)
            r_.error(cn[key], joinField(at(containersField, i), key),
                     fmt::format("{} MiB is more than the task's memory ({} MiB)", *value, *def.memory));
        }
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (!c.name.empty() && def.containers[j].name == c.name)
          r_.error(cn["name"], joinField(at(containersField, i), "name"), fmt::format("container name '{}' is used twice", c.name));
      }
      if (def.networkMode == NetworkMode::None && !c.portMappings.empty())
        r_.error(cn["portMappings"], joinField(at(containersField, i), "portMappings"), "networkMode none has no ports to map");
      // ECS's rule: in host and awsvpc mode a port is the container's own, so a hostPort
      // can only repeat it.
      if (def.networkMode == NetworkMode::Host || def.networkMode == NetworkMode::Awsvpc) {
        for (std::size_t p = 0; p < c.portMappings.size(); ++p) {
          const auto& pm = c.portMappings[p];
          if (pm.hostPort && *pm.hostPort != 0 && *pm.hostPort != pm.containerPort)
            r_.error(cn["portMappings"][p]["hostPort"], joinField(at(joinField(at(containersField, i), "portMappings"), p), "hostPort"),
                     fmt::format("with networkMode {}, hostPort must equal containerPort ({})", toString(def.networkMode), pm.containerPort));
        }
      }
      if (isAbsent(cn["memory"]) && isAbsent(cn["memoryReservation"]) && !def.memory && !c.name.empty()) {
        r_.warning(cn, at(containersField, i), fmt::format("container '{}' declares no memory: nothing is reserved or enforced for it", c.name));
      }
    }
    if (!def.containers.empty() && !anyEssential)
      r_.error(node["containerDefinitions"], containersField, "at least one container must be essential");
    // What containers reserve must fit in the task together; their hard limits need not (ECS
    // lets containers of one task burst into each other's share, up to the task's limit).
    if (def.memory && reservedMemory > *def.memory)
      r_.error(node["memory"], joinField(prefix, "memory"),
               fmt::format("{} MiB is less than the containers reserve together ({} MiB: memoryReservation, else memory)",
                           *def.memory, reservedMemory));
    if (def.cpu && reservedCpu > *def.cpu)
      r_.error(node["cpu"], joinField(prefix, "cpu"),
               fmt::format("{} CPU units is less than the containers reserve together ({})", *def.cpu, reservedCpu));
    for (const auto& [mount, field] : mountNodes_) {
      const std::string name = mount["sourceVolume"].IsScalar() ? mount["sourceVolume"].Scalar() : "";
      bool found = std::any_of(def.volumes.begin(), def.volumes.end(), [&](const Volume& v) { return v.name == name; });
      if (!name.empty() && !found)
        r_.error(mount["sourceVolume"], joinField(field, "sourceVolume"), fmt::format("no volume named '{}' in volumes", name));
    }
    for (const auto& [from, field] : volumesFromNodes_) {
      const std::string name = from["sourceContainer"].IsScalar() ? from["sourceContainer"].Scalar() : "";
      if (!name.empty() && !def.container(name))
        r_.error(from["sourceContainer"], joinField(field, "sourceContainer"), fmt::format("no container named '{}'", name));
    }
    for (const auto& [dep, field] : dependsOnNodes_) {
      const std::string name = dep["containerName"].IsScalar() ? dep["containerName"].Scalar() : "";
      const ContainerDefinition* target = def.container(name);
      if (!name.empty() && !target) {
        r_.error(dep["containerName"], joinField(field, "containerName"), fmt::format("no container named '{}'", name));
      } else if (target && !target->healthCheck && dep["condition"].IsScalar() && dep["condition"].Scalar() == "HEALTHY") {
        r_.error(dep["condition"], joinField(field, "condition"), fmt::format("HEALTHY needs a healthCheck on container '{}'", name));
      }
    }
    checkDependencyCycles(def, containersField);
  }

  void checkDependencyCycles(const TaskDefinition& def, const std::string& containersField) {
    enum class Mark { None, Visiting, Done };
    std::map<std::string, Mark> marks;
    std::vector<std::string> path;
    std::function<bool(const ContainerDefinition&)> visit = [&](const ContainerDefinition& c) {
      Mark& m = marks[c.name];
      if (m == Mark::Done) return false;
      if (m == Mark::Visiting) {
        path.push_back(c.name);
        return true;
      }
      m = Mark::Visiting;
      path.push_back(c.name);
      for (const auto& d : c.dependsOn) {
        const ContainerDefinition* next = def.container(d.containerName);
        if (next && visit(*next)) return true;
      }
      path.pop_back();
      marks[c.name] = Mark::Done;
      return false;
    };
    for (std::size_t i = 0; i < def.containers.size(); ++i) {
      path.clear();
      if (!def.containers[i].name.empty() && visit(def.containers[i])) {
        auto start = std::find(path.begin(), path.end(), path.back());
        std::vector<std::string> cycle(start, path.end());
        r_.error(containerNodes_[i]["dependsOn"], joinField(at(containersField, i), "dependsOn"),
                 fmt::format("dependency cycle: {}", fmt::join(cycle, " -> ")));
        return;
      }
    }
  }

  FieldReader& r_;
  std::vector<YAML::Node> containerNodes_;
  std::vector<std::pair<YAML::Node, std::string>> mountNodes_;
  std::vector<std::pair<YAML::Node, std::string>> volumesFromNodes_;
  std::vector<std::pair<YAML::Node, std::string>> dependsOnNodes_;
};

}  // namespace

std::optional<TaskDefinition> readTaskDefinition(const YAML::Node& node, FieldReader& reader,
                                                 const std::string& prefix) {
  const std::size_t errorsBefore = reader.errorCount();
  auto def = DefinitionReader(reader).read(node, prefix);
  if (!def || reader.errorCount() != errorsBefore) return std::nullopt;
  def->sourceFile = reader.file();
  return def;
}

std::optional<std::string> readTextFile(const std::filesystem::path& path, Diagnostics& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Diagnostic d;
    d.file = path.string();
    std::error_code ec;
    d.message = std::filesystem::exists(path, ec) ? "cannot be read" : "no such file";
    out.push_back(std::move(d));
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

DocumentFormat formatOf(const std::string& origin) {
  return std::filesystem::path(origin).extension() == ".json" ? DocumentFormat::Json : DocumentFormat::Yaml;
}

Parsed<TaskDefinition> parseTaskDefinition(std::string_view text, const std::string& origin) {
  return parseTaskDefinition(text, origin, formatOf(origin));
}

Parsed<TaskDefinition> parseTaskDefinition(std::string_view text, const std::string& origin,
                                           DocumentFormat format) {
  Parsed<TaskDefinition> out;
  auto doc = format == DocumentFormat::Json ? parseJsonDocument(text, origin, out.diagnostics)
                                            : parseDocument(text, origin, out.diagnostics);
  if (!doc) return out;
  FieldReader reader(origin, out.diagnostics);
  guardParse(out.diagnostics, origin, [&] { out.value = readTaskDefinition(*doc, reader, ""); });
  if (hasErrors(out.diagnostics)) out.value.reset();
  sortByPosition(out.diagnostics);
  return out;
}

Parsed<TaskDefinition> loadTaskDefinitionFile(const std::filesystem::path& path) {
  Parsed<TaskDefinition> out;
  auto text = readTextFile(path, out.diagnostics);
  if (!text) return out;
  return parseTaskDefinition(*text, path.string());
}

}  // namespace daemonlet::config
