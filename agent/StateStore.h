#pragma once
// stateDir/state.json (DESIGN 3.8): the last good desired state with its ETag and
// generation, so that input that breaks while the agent is down cannot lose what ran
// before (P6 across restarts), and an agent that starts while the control endpoint is
// down runs what it ran before (P7). Beside it, a record of each task's last status:
// what a restarted agent compares with the containers it finds. Written
// atomically (temp file, fsync, rename, fsync of the directory): a crash leaves the old
// file or the new one, never half of one. A corrupt file is moved aside as
// state.json.corrupt-<unix time> and reported; the agent starts without it.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/Reconciler.h"
#include "agent/source/DesiredStateSource.h"
#include "agent/Logger.h"

namespace daemonlet::agent {

struct TaskRecord {
  std::string status;  // RUNNING, STOPPED, ...
  std::string stoppedReason;
  std::map<std::string, int> exitCodes;  // by container name

  bool operator==(const TaskRecord&) const = default;
};

struct PersistedState {
  VersionedDesiredState desired;
  std::map<std::string, TaskRecord> tasks;  // by task id
  std::string instanceId;  // whose records these are: another instance's say nothing of ours
};

// What a plan says of each task, as state.json keeps it.
std::map<std::string, TaskRecord> taskRecordsOf(const std::vector<TaskStatus>& tasks);

// Temp file, fsync, rename, fsync of the directory (created 0700 when missing): a crash
// leaves the old file or the new one. Errors are left in errno / the returned false.
bool writeFileAtomically(const std::filesystem::path& path, const std::string& text);

class StateStore {
 public:
  StateStore(std::filesystem::path directory, Logger& log);

  std::filesystem::path path() const { return directory_ / "state.json"; }
  std::optional<PersistedState> load();
  bool save(const PersistedState& state);

 private:
  void moveAside(const std::string& why);

  std::filesystem::path directory_;
  Logger& log_;
};

}  // namespace daemonlet::agent
