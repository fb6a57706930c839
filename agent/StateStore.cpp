#include "agent/StateStore.h"
#include "runtime/JsonText.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config/TaskDefinitionParser.h"

namespace daemonlet::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kFormat = 1;

json definitionEntry(const config::TaskDefinition& d) {
  return {{"sourceFile", d.sourceFile}, {"definition", json::parse(d.canonicalJson)}};
}

// Reads one saved definition back through the same parser as any input: the hash it
// gets is the hash it had.
std::optional<config::TaskDefinition> readDefinition(const json& entry, std::string& why) {
  if (!entry.is_object() || !entry.contains("definition") || !entry.value("sourceFile", json()).is_string()) {
    why = "an entry lacks its definition or sourceFile";
    return std::nullopt;
  }
  auto parsed = config::parseTaskDefinition(jsonText(entry["definition"]), entry["sourceFile"].get<std::string>());
  if (!parsed.ok()) {
    why = parsed.diagnostics.empty() ? "a definition does not parse" : parsed.diagnostics.front().format();
    return std::nullopt;
  }
  return parsed.value;
}

json recordJson(const TaskRecord& r) {
  return {{"status", r.status}, {"stoppedReason", r.stoppedReason.empty() ? json(nullptr) : json(r.stoppedReason)}, {"exitCodes", r.exitCodes}};
}

// Records are a diagnostic aid: one of the wrong shape is nullopt, dropped by the caller.
std::optional<TaskRecord> readRecord(const json& r) {
  if (!r.is_object() || !r.value("status", json()).is_string()) return std::nullopt;
  TaskRecord record;
  record.status = r["status"].get<std::string>();
  if (r.value("stoppedReason", json()).is_string()) record.stoppedReason = r["stoppedReason"].get<std::string>();
  const json exitCodes = r.value("exitCodes", json::object());
  if (!exitCodes.is_object()) return std::nullopt;
  for (const auto& [name, code] : exitCodes.items()) {
    if (code.is_number_integer()) record.exitCodes[name] = code.get<int>();
  }
  return record;
}

bool writeAll(int fd, const std::string& data) {
  for (std::size_t off = 0; off < data.size();) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

namespace {

// The state in `doc`, or nullopt with `why` set; `defaulted` says which side fields were
// mistyped and read as absent. May throw on a definition of the wrong shape.
std::optional<PersistedState> parseState(const json& doc, std::string& why, std::vector<std::string>& defaulted) {
  if (!doc.value("format", json()).is_number_integer() || doc["format"].get<std::int64_t>() != kFormat) {
    why = "unknown format " + jsonText(doc.value("format", json(nullptr)));
    return std::nullopt;
  }
  PersistedState saved;
  // These stand apart from the definitions: a wrong one is defaulted, and what ran is kept
  // (P6, P7). An empty ETag only costs one full fetch.
  const auto field = [&](const char* key, bool (json::*isType)() const noexcept) -> const json* {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) return nullptr;
    if (((*it).*isType)()) return &*it;
    defaulted.push_back(fmt::format("\"{}\" is {}, not the expected type", key, jsonText(*it).substr(0, 40)));
    return nullptr;
  };
  config::DesiredState& state = saved.desired.state;
  if (const json* etag = field("etag", &json::is_string)) saved.desired.etag = etag->get<std::string>();
  if (const json* generation = field("generation", &json::is_number_integer)) state.generation = generation->get<std::int64_t>();
  if (const json* status = field("instanceStatus", &json::is_string); status && status->get<std::string>() == "DRAINING")
    state.instanceStatus = config::InstanceStatus::Draining;
  for (const char* list : {"daemons", "tasks"}) {
    if (!doc.value(list, json::array()).is_array()) {
      why = fmt::format("\"{}\" is not a list", list);
      return std::nullopt;
    }
  }
  for (const auto& entry : doc.value("daemons", json::array())) {
    auto def = readDefinition(entry, why);
    if (!def) return std::nullopt;
    state.daemons.push_back(std::move(*def));
  }
  for (const auto& entry : doc.value("tasks", json::array())) {
    auto def = readDefinition(entry, why);
    if (!def || !entry.value("id", json()).is_string()) {
      if (def) why = "a task lacks its id";
      return std::nullopt;
    }
    config::ApplicationTask task{entry["id"].get<std::string>(), std::move(*def)};
    if (entry.value("restart", json()).is_string()) task.restart = config::parseTaskRestart(entry["restart"].get<std::string>()).value_or(task.restart);
    state.tasks.push_back(std::move(task));
  }
  // Records are a diagnostic aid: a malformed one is dropped, not a reason to lose the state.
  // Named: a range-for over items() of a temporary would dangle.
  if (doc.value("instanceId", json()).is_string()) saved.instanceId = doc["instanceId"].get<std::string>();
  const json records = doc.value("taskRecords", json::object());
  if (!records.is_object()) return saved;
  for (const auto& [id, r] : records.items()) {
    if (auto record = readRecord(r)) saved.tasks[id] = std::move(*record);
  }
  return saved;
}

}  // namespace

StateStore::StateStore(fs::path directory, Logger& log) : directory_(std::move(directory)), log_(log) {}

void StateStore::moveAside(const std::string& why) {
  const auto stamp = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const fs::path aside = directory_ / ("state.json.corrupt-" + std::to_string(stamp));
  std::error_code ec;
  fs::rename(path(), aside, ec);
  log_.error("{}: {}; moved aside to {} and starting without it (adoption from container labels still works)", path().string(), why,
             ec ? "(could not move it: " + ec.message() + ")" : aside.string());
}

std::optional<PersistedState> StateStore::load() {
  std::ifstream in(path());
  if (!in) return std::nullopt;  // first start
  std::stringstream text;
  text << in.rdbuf();
  const json doc = json::parse(text.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    moveAside("not valid JSON");
    return std::nullopt;
  }
  // A field of the wrong type (a hand edit, a bit flip) is corruption like any other, not
  // an exception out of the agent's start.
  std::string why;
  try {
    std::vector<std::string> defaulted;
    auto saved = parseState(doc, why, defaulted);
    if (!saved) moveAside(why);
    for (const auto& d : defaulted) log_.warn("{}: {}; read as absent, the saved definitions are kept", path().string(), d);
    snapshotBytes_ = text.str().size();
    if (saved) replayJournal(*saved, doc.value("journalEpoch", json()).is_number_unsigned() ? doc["journalEpoch"].get<std::uint64_t>() : 0);
    return saved;
  } catch (const std::exception& e) {  // json's type errors, or a parser's own
    moveAside(fmt::format("a field has the wrong type ({})", e.what()));
    return std::nullopt;
  }
}


void StateStore::replayJournal(PersistedState& state, std::uint64_t epoch) {
  epoch_ = epoch;
  journalBytes_ = 0;
  std::ifstream in(journalPath());
  if (!in) return;
  std::string line;
  std::getline(in, line);
  const json header = json::parse(line, nullptr, false);
  std::error_code ec;
  if (header.is_discarded() || !header.is_object() || header.value("epoch", json()) != json(epoch)) {
    // Left by a crash between a full save and the journal's removal: older than the snapshot.
    fs::remove(journalPath(), ec);
    return;
  }
  std::size_t applied = 0;
  std::uintmax_t whole = line.size() + 1;  // bytes up to the end of the last good line
  while (std::getline(in, line)) {
    const json entry = json::parse(line, nullptr, false);
    if (in.eof() || entry.is_discarded() || !entry.is_object() || !entry.value("id", json()).is_string()) {
      // A torn last line is an append a crash cut short; anything after it is not trusted.
      // Cut back to the last whole line, or the next append would be glued onto it.
      if (in.peek() != std::char_traits<char>::eof()) log_.warn("{}: line {} is not a record; the lines after it are ignored", journalPath().string(), applied + 2);
      in.close();
      fs::resize_file(journalPath(), whole, ec);
      break;
    }
    whole += line.size() + 1;
    const std::string id = entry["id"].get<std::string>();
    if (entry.value("record", json()).is_null()) state.tasks.erase(id);
    else if (auto record = readRecord(entry["record"])) state.tasks[id] = std::move(*record);
    ++applied;
  }
  journalBytes_ = fs::file_size(journalPath(), ec);
  if (ec) journalBytes_ = 0;
}

bool StateStore::appendRecords(const TaskRecordChanges& changes) {
  std::string text;
  if (journalBytes_ == 0) text = jsonText(json{{"epoch", epoch_}}) + "\n";
  for (const auto& [id, record] : changes) text += jsonText(json{{"id", id}, {"record", record ? recordJson(*record) : json(nullptr)}}) + "\n";
  std::error_code ec;
  if (fs::create_directories(directory_, ec)) fs::permissions(directory_, fs::perms::owner_all, ec);
  // A header without its snapshot's epoch would be replayed over the wrong one: a
  // journal begins only from an empty file.
  const int fd = ::open(journalPath().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (journalBytes_ == 0 ? O_TRUNC : 0), 0600);
  const bool ok = fd >= 0 && writeAll(fd, text) && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (ok) journalBytes_ += text.size();
  else log_.warn("{}: could not save {} task record(s) ({})", journalPath().string(), changes.size(), std::string(strerror(errno)));
  return ok;
}

namespace {

TaskRecord recordOf(const TaskStatus& t) {
  TaskRecord r;
  r.status = toString(t.status);
  r.stoppedReason = t.stoppedReason;
  for (const auto& c : t.containers) {
    if (c.exitCode) r.exitCodes[c.name] = *c.exitCode;
  }
  return r;
}

}  // namespace

std::map<std::string, TaskRecord> taskRecordsOf(const std::vector<TaskStatus>& tasks) {
  std::map<std::string, TaskRecord> records;
  for (const auto& t : tasks) records[t.id] = recordOf(t);
  return records;
}

TaskRecordChanges applyTaskRecords(std::map<std::string, TaskRecord>& records, const std::vector<TaskStatus>& tasks) {
  TaskRecordChanges changes;
  std::vector<std::string_view> planned;
  planned.reserve(tasks.size());
  for (const auto& t : tasks) {
    planned.push_back(t.id);
    TaskRecord r = recordOf(t);
    auto [it, added] = records.try_emplace(t.id);
    if (!added && it->second == r) continue;
    it->second = r;
    changes[t.id] = std::move(r);
  }
  std::sort(planned.begin(), planned.end());
  for (auto it = records.begin(); it != records.end();) {
    if (std::binary_search(planned.begin(), planned.end(), std::string_view(it->first))) {
      ++it;
      continue;
    }
    changes[it->first] = std::nullopt;
    it = records.erase(it);
  }
  return changes;
}

bool writeFileAtomically(const fs::path& target, const std::string& text) {
  std::error_code ec;
  const fs::path directory = target.parent_path();
  if (fs::create_directories(directory, ec)) fs::permissions(directory, fs::perms::owner_all, ec);
  const fs::path temp = target.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && writeAll(fd, text) && ::fsync(fd) == 0;
  if (fd >= 0) ok = ::close(fd) == 0 && ok;
  if (ok) {
    fs::rename(temp, target, ec);
    if (ec) errno = ec.value();
    ok = !ec;
  }
  if (ok) {
    // The rename is durable only once the directory itself is synced.
    const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  } else {
    const int saved = errno;
    fs::remove(temp, ec);
    errno = saved;
  }
  return ok;
}

bool StateStore::save(const VersionedDesiredState& desired, const std::map<std::string, TaskRecord>& tasks, const std::string& instanceId) {
  const config::DesiredState& state = desired.state;
  json doc = {{"format", kFormat},
              {"etag", desired.etag},
              {"instanceId", instanceId},
              {"generation", state.generation},
              {"instanceStatus", config::toString(state.instanceStatus)}};
  doc["daemons"] = json::array();
  for (const auto& d : state.daemons) doc["daemons"].push_back(definitionEntry(d));
  doc["tasks"] = json::array();
  for (const auto& t : state.tasks) {
    json entry = definitionEntry(t.definition);
    entry["id"] = t.id;
    entry["restart"] = config::toString(t.restart);
    doc["tasks"].push_back(std::move(entry));
  }
  doc["taskRecords"] = json::object();
  for (const auto& [id, r] : tasks) doc["taskRecords"][id] = recordJson(r);
  const std::uint64_t epoch = epoch_ + 1;
  doc["journalEpoch"] = epoch;
  const std::string text = jsonText(doc, 1) + "\n";

  const bool ok = writeFileAtomically(path(), text);
  if (ok) {
    // The snapshot holds every record now; a crash before this removal leaves a journal
    // of the old epoch, which load() drops.
    epoch_ = epoch;
    snapshotBytes_ = text.size();
    journalBytes_ = 0;
    std::error_code ec;
    fs::remove(journalPath(), ec);
  } else {
    log_.warn("{}: could not save the desired state ({}): a restart with broken input would lose it", path().string(),
              std::string(strerror(errno)));
  }
  return ok;
}

}  // namespace daemonlet::agent
