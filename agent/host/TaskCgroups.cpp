#include "agent/host/TaskCgroups.h"
#include "agent/host/Libsystemd.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include <fcntl.h>
#include <unistd.h>

namespace daemonlet::agent {
namespace {

namespace fs = std::filesystem;
using runtime::Error;

std::string readTrimmed(const fs::path& path) {
  std::ifstream in(path);
  std::string value;
  std::getline(in, value);
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  return value;
}

// cpu.max reads back "max 100000" or "50000 100000"; the limits files as plain numbers.
bool holds(const fs::path& path, const std::string& value) {
  const std::string current = readTrimmed(path);
  return current == value;
}

// "" when written, else the errno text: a cgroup file reports a refused value at write().
std::string writeFile(const fs::path& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::strerror(errno);
  const bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  const std::string why = ok ? "" : std::strerror(errno);
  ::close(fd);
  return why;
}

// A group directory holds a container once the engine's runtime made the container's own
// cgroup in it (a subdirectory) or put a process in it directly.
bool inUse(const fs::path& group) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(group, ec)) {
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) return true;
  }
  return !readTrimmed(group / "cgroup.procs").empty();
}

struct BusDeleter {
  void operator()(sd_bus* bus) const { libsystemd().bus_flush_close_unref(bus); }
};
using Bus = std::unique_ptr<sd_bus, BusDeleter>;

constexpr const char* kSystemd = "org.freedesktop.systemd1";
constexpr const char* kSystemdPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

}  // namespace

TaskCgroups::TaskCgroups(Logger& log, fs::path mount) : log_(log), mount_(std::move(mount)) {}

void TaskCgroups::configure(CgroupDriver driver, int version) {
  driver_ = driver;
  version_ = version == 2 ? 2 : 1;
}

runtime::Status TaskCgroups::ensure(const std::string& parent, const CgroupLimits& limits) {
  return driver_ == CgroupDriver::Systemd ? ensureSlice(parent, limits) : ensureDirectories(parent, limits);
}

bool TaskCgroups::remove(const std::string& parent) {
  if (driver_ == CgroupDriver::Systemd) return removeSlice(parent);
  bool gone = true;
  for (const auto& dir : cgroupfsDirectories(version_, parent, controllers())) {
    const fs::path path = mount_ / dir;
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
      log_.warn("cgroup {}: not removed: {}", path.string(), std::strerror(errno));
      gone = false;
    }
  }
  return gone;
}

bool TaskCgroups::exists(const std::string& parent, const CgroupLimits& limits) const {
  if (driver_ == CgroupDriver::Systemd) return true;
  std::error_code ec;
  for (const auto& step : cgroupfsSteps(version_, parent, limits)) {
    if (step.type == CgroupStep::Type::MakeDirectory && !fs::is_directory(mount_ / step.path, ec)) return false;
  }
  return true;
}

std::vector<FoundParent> TaskCgroups::parents() const {
  if (driver_ == CgroupDriver::Systemd) return {};
  std::map<std::string, FoundParent> found;
  const auto now = fs::file_time_type::clock::now();
  for (const auto& dir : cgroupfsDirectories(version_, "/daemonlet", controllers())) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(mount_ / dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_symlink(ec) || !entry.is_directory(ec) || (name.rfind("task-", 0) != 0 && name.rfind("daemon-", 0) != 0))
        continue;
      const auto changed = fs::last_write_time(entry.path(), ec);
      const auto age = ec ? std::chrono::seconds(0) : std::chrono::duration_cast<std::chrono::seconds>(now - changed);
      auto [it, first] = found.try_emplace(name, FoundParent{"/daemonlet/" + name, age, false});
      if (!first) it->second.age = std::min(it->second.age, age);
      it->second.populated = it->second.populated || inUse(entry.path());
    }
  }
  std::vector<FoundParent> out;
  for (auto& [name, f] : found) out.push_back(std::move(f));
  return out;
}

// Every v1 hierarchy the engine's runtime creates the parent in (one directory per
// mounted controller set), so that none is left behind.
std::vector<std::string> TaskCgroups::controllers() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(mount_, ec)) {
    if (entry.is_symlink(ec) || !entry.is_directory(ec)) continue;  // cpu -> cpu,cpuacct and the like
    out.push_back(entry.path().filename().string());
  }
  return out;
}

runtime::Status TaskCgroups::ensureDirectories(const std::string& parent, const CgroupLimits& limits) {
  std::map<fs::path, bool> live;  // by group directory: holds a container already
  for (const auto& step : cgroupfsSteps(version_, parent, limits)) {
    const fs::path path = mount_ / step.path;
    if (step.type == CgroupStep::Type::MakeDirectory) {
      std::error_code ec;
      fs::create_directories(path, ec);
      if (ec) return Error{Error::Code::PermissionDenied, "cannot create " + path.string() + ": " + ec.message()};
      continue;
    }
    if (step.optional && !fs::exists(path)) continue;
    // subtree_control lists what is enabled ("cpu memory"); the limit files read back as written.
    if (path.filename() == "cgroup.subtree_control") {
      const std::string enabled = " " + readTrimmed(path) + " ";
      if (enabled.find(" " + step.value.substr(1) + " ") != std::string::npos) continue;
    } else if (holds(path, step.value)) {
      continue;
    } else if (live.try_emplace(path.parent_path(), inUse(path.parent_path())).first->second) {
      // Limits are written when a copy's group is made. One that holds containers already
      // (adopted after an agent restart or upgrade whose rule differs) keeps what it has:
      // lowering a live limit could OOM-kill a running task (P5). Its next copy gets the new one.
      log_.info("cgroup {}: in use, keeps {} (this agent would write {}); its next copy gets the new value", path.string(),
                readTrimmed(path), step.value);
      continue;
    }
    if (auto written = writeFile(path, step.value); !written.empty()) {
      if (step.optional) continue;
      return Error{Error::Code::PermissionDenied, "cannot write " + step.value + " to " + path.string() + ": " + written};
    }
  }
  return runtime::Done{};
}

// A transient slice carries the limits as unit properties; the engine's runtime then puts
// each container's scope in it.
runtime::Status TaskCgroups::ensureSlice(const std::string& slice, const CgroupLimits& limits) {
  const Libsystemd* b = nullptr;
  try {
    b = &libsystemd();
  } catch (const std::exception& e) {
    return Error{Error::Code::Unsupported, "systemd slice " + slice + ": " + e.what()};
  }
  sd_bus* raw = nullptr;
  if (int r = b->bus_open_system(&raw); r < 0)
    return Error{Error::Code::Unavailable, "systemd slice " + slice + ": no system bus: " + std::strerror(-r)};
  Bus bus(raw);
  sd_bus_message* m = nullptr;
  int r = b->bus_message_new_method_call(bus.get(), &m, kSystemd, kSystemdPath, kManager, "StartTransientUnit");
  if (r >= 0) r = b->bus_message_append(m, "ss", slice.c_str(), "fail");
  if (r >= 0) r = b->bus_message_open_container(m, 'a', "(sv)");
  if (r >= 0) r = b->bus_message_append(m, "(sv)", "Description", "s", ("daemonlet copy " + slice).c_str());
  for (const auto& p : sliceProperties(version_, limits)) {
    if (r >= 0) r = b->bus_message_append(m, "(sv)", p.name.c_str(), "t", p.value);
  }
  if (r >= 0) r = b->bus_message_close_container(m);
  if (r >= 0) r = b->bus_message_append(m, "a(sa(sv))", 0);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  if (r >= 0) r = b->bus_call(bus.get(), m, 0, &error, nullptr);
  const std::string why = error.message ? error.message : (r < 0 ? std::strerror(-r) : "");
  const bool exists = error.name && std::string(error.name) == "org.freedesktop.systemd1.UnitExists";
  b->bus_error_free(&error);
  b->bus_message_unref(m);
  // Already there: set up by this agent before a restart, with the limits of this very
  // hash (the name carries it). Left as it is (P5).
  if (r < 0 && !exists) return Error{Error::Code::Engine, "systemd slice " + slice + ": " + why};
  return runtime::Done{};
}

bool TaskCgroups::removeSlice(const std::string& slice) {
  const Libsystemd* b = nullptr;
  try {
    b = &libsystemd();
  } catch (const std::exception&) {
    return false;
  }
  sd_bus* raw = nullptr;
  if (b->bus_open_system(&raw) < 0) return false;
  Bus bus(raw);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = b->bus_call_method(bus.get(), kSystemd, kSystemdPath, kManager, "StopUnit", &error, &reply, "ss", slice.c_str(), "replace");
  const bool gone = r >= 0 || (error.name && std::string(error.name) == "org.freedesktop.systemd1.NoSuchUnit");
  if (!gone) log_.warn("systemd slice {}: not stopped: {}", slice, error.message ? error.message : std::strerror(-r));
  b->bus_error_free(&error);
  b->bus_message_unref(reply);
  return gone;
}

}  // namespace daemonlet::agent
