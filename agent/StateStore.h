#pragma once
// stateDir/state.json (DESIGN 3.8): the last good desired state with its ETag and
// generation, so that input that breaks while the agent is down cannot lose what ran
// before (P6 across restarts), and an agent that starts while the control endpoint is
// down runs what it ran before (P7). Beside it, a record of each task's last status:
// what a restarted agent compares with the containers it finds. Written
// atomically (temp file, fsync, rename, fsync of the directory): a crash leaves the old
// file or the new one, never half of one. A corrupt file is moved aside as
// state.json.corrupt-<unix time> and reported; the agent starts without it.
//
// Records that change between full saves go to stateDir/state.journal, one JSON line per
// changed task and one fsync per append, so that 1,000 tasks do not cost a 460 KB rewrite
// on every event (issue 15). The journal names the snapshot it follows (its epoch); one
// left behind by a crash during a full save is older than the snapshot and is dropped.
#include <algorithm>
#include <cstdint>
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

// Task id -> its new record, or nullopt for a task gone from the plan.
using TaskRecordChanges = std::map<std::string, std::optional<TaskRecord>>;

// Makes `records` say what `tasks` says, and returns only what that changed.
TaskRecordChanges applyTaskRecords(std::map<std::string, TaskRecord>& records, const std::vector<TaskStatus>& tasks);

// Temp file, fsync, rename, fsync of the directory (created 0700 when missing): a crash
// leaves the old file or the new one. Errors are left in errno / the returned false.
bool writeFileAtomically(const std::filesystem::path& path, const std::string& text);

class StateStore {
 public:
  StateStore(std::filesystem::path directory, Logger& log);

  std::filesystem::path path() const { return directory_ / "state.json"; }
  std::filesystem::path journalPath() const { return directory_ / "state.journal"; }
  // The snapshot with the journal's records applied.
  std::optional<PersistedState> load();
  // A full snapshot; the journal starts again empty.
  bool save(const PersistedState& state) { return save(state.desired, state.tasks, state.instanceId); }
  bool save(const VersionedDesiredState& desired, const std::map<std::string, TaskRecord>& tasks, const std::string& instanceId);
  // Appends changed records to the journal (after a save: a load() or save() comes first).
  bool appendRecords(const TaskRecordChanges& changes);
  std::uintmax_t journalBytes() const { return journalBytes_; }
  // The journal has grown past the snapshot: time to fold it in with save().
  bool compactionDue() const { return journalBytes_ > std::max<std::uintmax_t>(snapshotBytes_, 64 * 1024); }

 private:
  void moveAside(const std::string& why);
  void replayJournal(PersistedState& state, std::uint64_t epoch);

  std::filesystem::path directory_;
  Logger& log_;
  std::uint64_t epoch_ = 0;  // of the snapshot on disk; its journal carries the same
  std::uintmax_t journalBytes_ = 0;
  std::uintmax_t snapshotBytes_ = 0;
};

}  // namespace daemonlet::agent
