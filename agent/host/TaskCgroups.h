#pragma once
// The I/O half of one cgroup per copy (P3; the decisions are in core/TaskCgroup.h): creates
// a copy's parent cgroup and writes its limits before its first container is created, and
// removes it once the copy's last container is gone. cgroupfs parents are directories
// under the cgroup mount; systemd parents are transient slices set up over the system bus.
// A parent that already holds the right limits is left alone, so an agent that restarts
// and adopts running containers changes nothing about them (P5).
#include <filesystem>
#include <string>
#include <vector>

#include "agent/Logger.h"
#include "agent/core/TaskCgroup.h"
#include "runtime/Result.h"

namespace daemonlet::agent {

class TaskCgroups {
 public:
  explicit TaskCgroups(Logger& log, std::filesystem::path mount = "/sys/fs/cgroup");

  // From the engine's report (EngineInfo): how it names cgroups and which version runs.
  void configure(CgroupDriver driver, int version);
  CgroupDriver driver() const { return driver_; }

  runtime::Status ensure(const std::string& parent, const CgroupLimits& limits);
  // Best effort: a parent still in use (EBUSY) stays, and is logged. True when it is gone
  // from every hierarchy.
  bool remove(const std::string& parent);
  // Whether the parent is there, in every hierarchy `limits` are written in (a systemd slice
  // counts as there: ensure keeps an existing one as it is).
  bool exists(const std::string& parent, const CgroupLimits& limits) const;
  // cgroupfs: every copy's parent under daemonlet/ (task-* and daemon-*), from every
  // hierarchy. Empty with the systemd driver: its slices are not swept.
  std::vector<FoundParent> parents() const;

 private:
  runtime::Status ensureDirectories(const std::string& parent, const CgroupLimits& limits);
  runtime::Status ensureSlice(const std::string& slice, const CgroupLimits& limits);
  bool removeSlice(const std::string& slice);
  std::vector<std::string> controllers() const;

  Logger& log_;
  std::filesystem::path mount_;
  CgroupDriver driver_ = CgroupDriver::Cgroupfs;
  int version_ = 1;
};

}  // namespace daemonlet::agent
