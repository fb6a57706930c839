#include "agent/Executor.h"

#include <algorithm>
#include <fstream>

#include "agent/core/ContainerSpecBuilder.h"
#include "agent/core/TaskCgroup.h"
#include "agent/host/PauseImage.h"
#include "agent/ScopedFlag.h"
#include "agent/StateStore.h"

namespace daemonlet::agent {

namespace {

// The journald fields of a line about one step (Logger.h).
LogFields fieldsOf(const Action& action) {
  LogFields f;
  if (action.kind == Kind::Daemon) f.family = action.owner;
  else f.taskId = action.owner;
  if (action.definition && f.family.empty()) f.family = action.definition->family;
  f.containerId = action.containerId;
  return f;
}

// One copy: a daemon revision or a task run.
std::string copyKey(Kind kind, const std::string& owner, const std::string& hash) { return fmt::format("{}/{}/{}", toString(kind), owner, hash); }

// Counts a step under `key` while it is under way; the entry goes with the last one.
class CountIn {
 public:
  CountIn(std::map<std::string, int>& counts, std::string key) : counts_(counts), key_(std::move(key)) { ++counts_[key_]; }
  ~CountIn() {
    if (--counts_[key_] == 0) counts_.erase(key_);
  }
  CountIn(const CountIn&) = delete;
  CountIn& operator=(const CountIn&) = delete;

 private:
  std::map<std::string, int>& counts_;
  std::string key_;
};

// 1 s, doubling, at most 16 s: a remove retried soon after the engine is back, not
// thousands of times a second while it is gone.
std::chrono::milliseconds stepBackoff(int failures) {
  return std::chrono::milliseconds(1000) * (1 << std::clamp(failures - 1, 0, 4));
}

}  // namespace

Executor::Executor(asio::any_io_executor executor, runtime::Runtime& runtime, Logger& log, std::string instanceId)
    : executor_(std::move(executor)), runtime_(runtime), log_(log), instanceId_(std::move(instanceId)),
      preparation_(runtime, log, instanceId_) {}

void Executor::notify() {
  if (changed_) changed_();
}

ObservedState Executor::observed() const {
  ObservedState out;
  out.containers.reserve(containers_.size());
  for (const auto& [id, c] : containers_) out.containers.push_back(c);
  return out;
}

bool Executor::inFlight(Kind kind) const {
  return std::any_of(inFlight_.begin(), inFlight_.end(), [&](const auto& kv) { return kv.second == kind; });
}

void Executor::upsert(const runtime::ContainerInfo& info) {
  auto instance = info.labels.find(label::kInstance);
  if (instance == info.labels.end() || instance->second != instanceId_) return;
  if (auto c = observe(info)) {
    containers_[info.id] = std::move(*c);
    changedAt_[info.id] = ++seq_;
  }
}

void Executor::erase(const std::string& id) {
  std::string parent;
  if (auto it = containers_.find(id); it != containers_.end()) {
    parent = it->second.cgroupParent;
    stepFailures_.erase(it->second.name);  // a new container of that name starts afresh
  }
  containers_.erase(id);
  changedAt_[id] = ++seq_;
  if (!parent.empty()) releaseCgroup(parent);
}

// The copy's last container is gone, and none is being created into it: its parent goes.
void Executor::releaseCgroup(const std::string& parent) {
  if (!cgroups_ || creatingIn_.count(parent)) return;
  for (const auto& [id, c] : containers_) {
    if (c.cgroupParent == parent) return;
  }
  cgroups_->remove(parent);
  log_.debug("cgroup {}: removed with the copy's last container", parent);
}

// Counts a create into a parent cgroup while it is under way: a removal finishing
// meanwhile must not take the parent away. One that ends with no container releases it.
Executor::CreatingIn::CreatingIn(Executor& e, std::string parent) : executor(e), parent(std::move(parent)) {
  if (!this->parent.empty()) ++executor.creatingIn_[this->parent];
}

Executor::CreatingIn::~CreatingIn() {
  if (parent.empty()) return;
  if (--executor.creatingIn_[parent] == 0) executor.creatingIn_.erase(parent);
  if (!created) executor.releaseCgroup(parent);
}

// Fails closed (P3): a copy whose parent cannot be made or limited is not created at all,
// rather than run with nothing enforcing what it reserved. The caller reports it STOPPED
// with this reason and retries with the usual backoff; what already runs is not touched.
runtime::Result<std::optional<std::string>> Executor::placeInCgroup(const Action& action) {
  if (!cgroups_) return std::optional<std::string>{};
  const config::TaskDefinition& def = *action.definition;
  // Nothing reserved, nothing to enforce: the engine's default place will do, and an
  // unwritable tree does not keep the copy (a daemon, and with it the slot gate) down.
  if (groupLimits(def) == CgroupLimits{}) return std::optional<std::string>{};
  const std::string parent = cgroupParent(cgroups_->driver(), action.kind, def, action.kind == Kind::Task ? action.owner : "", instanceId_);
  if (auto made = limitParent(parent, def); !made) return made.error();
  return std::optional<std::string>{parent};
}

runtime::Status Executor::limitParent(const std::string& parent, const config::TaskDefinition& def) {
  auto made = cgroups_->ensure(parent, groupLimits(def));
  if (!made) return runtime::Error{made.error().code, fmt::format("{}: task cgroup {}: {}", kResourceInitialization, parent, made.error().message)};
  return runtime::Done{};
}

bool Executor::changedSince(const std::string& id, std::uint64_t seq) const {
  auto it = changedAt_.find(id);
  return it != changedAt_.end() && it->second > seq;
}

asio::awaitable<runtime::Status> Executor::refresh() {
  const std::uint64_t began = seq_;
  std::optional<runtime::Result<std::vector<runtime::ContainerInfo>>> listed;
  {
    ScopedCount underWay(listings_);
    listed.emplace(co_await runtime_.list(managedSelector()));
  }
  if (!*listed) co_return listed->error();
  std::map<std::string, ObservedContainer> before;
  before.swap(containers_);
  std::set<std::string> seen;
  for (const auto& info : listed->value()) {
    seen.insert(info.id);
    // Removed by this agent after the listing was taken: it is gone, whatever the list says.
    if (changedSince(info.id, began) && !before.count(info.id)) continue;
    if (changedSince(info.id, began)) containers_[info.id] = before[info.id];
    else upsert(info);
  }
  // Created by this agent after the listing was taken: the list cannot know it yet.
  for (auto& [id, c] : before) {
    if (!seen.count(id) && changedSince(id, began)) containers_[id] = std::move(c);
  }
  if (listings_ == 0) changedAt_.clear();
  notify();
  if (idle()) {
    // Judged when the volume listing is in: a step begun meanwhile keeps every volume.
    auto hasContainers = [this](Kind kind, const std::string& owner, const std::string& hash) {
      return !idle() || std::any_of(containers_.begin(), containers_.end(), [&](const auto& kv) {
        return kv.second.kind == kind && kv.second.owner() == owner && kv.second.hash == hash;
      });
    };
    spawnGuarded(executor_, preparation_.sweepVolumes(hasContainers), "sweep task volumes", internalError_);
  }
  co_return runtime::Done{};
}

asio::awaitable<runtime::Status> Executor::refreshOrphans() {
  runtime::LabelSelector managed{{label::kManaged, "true"}};
  auto listed = co_await runtime_.list(std::move(managed));
  if (!listed) co_return listed.error();
  std::vector<OrphanContainer> found;
  for (const auto& info : listed.value()) {
    auto instance = info.labels.find(label::kInstance);
    if (instance != info.labels.end() && instance->second == instanceId_) continue;
    OrphanContainer o;
    o.id = info.id;
    o.name = info.name;
    o.instance = instance == info.labels.end() ? "" : instance->second;
    auto kind = info.labels.find(label::kKind);
    o.kind = kind != info.labels.end() && kind->second == "daemon" ? Kind::Daemon : Kind::Task;
    auto owner = info.labels.find(o.kind == Kind::Daemon ? label::kFamily : label::kTaskId);
    if (owner != info.labels.end()) o.owner = owner->second;
    o.running = info.running();
    found.push_back(std::move(o));
  }
  if (found.size() != orphans_.size()) {
    if (found.empty()) log_.info("orphans: none left");
    else log_.warn("orphans: {} managed container(s) of other instance ids on this engine (e.g. {} of instance '{}'); "
                   "not adopted, not removed: remove them yourself once you know whose they are",
                   found.size(), found.front().name, found.front().instance);
  }
  orphans_ = std::move(found);
  sweepLeftoverCgroups(listed.value());
  co_return runtime::Done{};
}

void Executor::sweepLeftoverCgroups(const std::vector<runtime::ContainerInfo>& managed) {
  if (!cgroups_) return;
  std::set<std::string> named;
  for (const auto& info : managed) named.insert(info.cgroupParent);
  for (const auto& [id, c] : containers_) named.insert(c.cgroupParent);
  for (const auto& [parent, count] : creatingIn_) named.insert(parent);
  std::vector<std::string> removed;
  for (const auto& parent : leftoverParents(cgroups_->parents(), named, kLeftoverParentAge)) {
    if (cgroups_->remove(parent)) removed.push_back(parent);
  }
  if (!removed.empty())
    log_.info("cgroups: removed {} leftover parent cgroup(s) no container names, empty for over {} min (e.g. {})", removed.size(),
              kLeftoverParentAge.count(), removed.front());
}

void Executor::applyEvent(const runtime::RuntimeEvent& event) {
  if (event.kind == runtime::RuntimeEvent::Kind::Destroy) {
    if (containers_.count(event.containerId)) {
      erase(event.containerId);
      notify();
    }
    return;
  }
  spawnGuarded(executor_, refreshOne(event.containerId), "inspect after a runtime event", internalError_);
}

asio::awaitable<void> Executor::refreshOne(std::string id) {
  const std::uint64_t began = seq_;
  std::optional<runtime::Result<runtime::ContainerInfo>> inspected;
  {
    ScopedCount underWay(listings_);
    inspected.emplace(co_await runtime_.inspect(id));
  }
  const auto& info = *inspected;
  if (!changedSince(id, began)) {
    if (info) upsert(info.value());
    else if (info.error().code == runtime::Error::Code::NotFound && containers_.count(id)) erase(id);
  }
  notify();
}

void Executor::execute(const std::vector<Action>& actions) {
  for (const auto& action : actions) {
    if (inFlight_.count(action.containerName)) continue;  // never the same step twice
    inFlight_[action.containerName] = action.kind;
    // run() catches what carryOut() throws; this handler is for anything past that.
    spawnGuarded(executor_, run(action), "executor", internalError_);
  }
}

void Executor::fail(const Action& action, const std::string& unredacted, bool stopsTask) {
  const std::string message = preparation_.redact(unredacted);
  log_.about(fieldsOf(action)).error("{} {}: {} failed: {}", toString(action.kind), action.owner, describe(action), message);
  if (failed_) failed_({action.containerName, action.kind, action.owner, message, stopsTask});
}

void Executor::noteStep(const Action& action, const runtime::Status& result) {
  if (result) stepFailures_.erase(action.containerName);
  else ++stepFailures_[action.containerName];
}

void Executor::removeVolumesOfGoneCopy(const ObservedContainer& removed) {
  const bool left = std::any_of(containers_.begin(), containers_.end(), [&](const auto& kv) {
    return kv.second.kind == removed.kind && kv.second.owner() == removed.owner() && kv.second.hash == removed.hash;
  });
  if (left) return;
  spawnGuarded(executor_, removeCopyVolumes(removed.kind, removed.owner(), removed.hash), "remove task volumes", internalError_);
}

asio::awaitable<void> Executor::removeCopyVolumes(Kind kind, std::string owner, std::string hash) {
  const std::string copy = copyKey(kind, owner, hash);
  CountIn removing(removingVolumes_, copy);
  // A named local, not a lambda temporary in the call: GCC 12 destroys that one twice.
  std::function<bool()> createUnderWay = [this, copy] { return creatingCopy_.count(copy) > 0; };
  co_await preparation_.removeVolumes(kind, owner, hash, createUnderWay);
}

asio::awaitable<void> Executor::awaitVolumeRemoval(const std::string& copy) {
  asio::steady_timer wait(executor_);
  while (removingVolumes_.count(copy)) {
    wait.expires_after(std::chrono::milliseconds(10));
    co_await wait.async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> Executor::run(Action action) {
  std::string thrown;
  try {
    co_await carryOut(action);
  } catch (const std::exception& e) {
    thrown = e.what();
  } catch (...) {
    thrown = "an exception of unknown type";
  }
  if (!thrown.empty()) {
    if (internalError_) internalError_(describe(action), thrown);
    fail(action, "internal error: " + thrown);  // backs off like any failed step
  }
  // Creates and starts have the reconciler's own backoff (and a task's stopped reason shows
  // while it runs); a stop or remove that failed waits here, or the loop would plan it again
  // at once.
  const bool backsOff = action.type == Action::Type::Stop || action.type == Action::Type::Remove;
  if (auto failed = stepFailures_.find(action.containerName); backsOff && failed != stepFailures_.end()) {
    asio::steady_timer backoff(executor_, stepBackoff(failed->second));
    boost::system::error_code ec;
    co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  inFlight_.erase(action.containerName);
  notify();
}

asio::awaitable<void> Executor::carryOut(const Action& action) {
  log_.about(fieldsOf(action)).debug("{} {}: {}", toString(action.kind), action.owner, describe(action));
  switch (action.type) {
    case Action::Type::Create:
      co_await create(action);
      break;
    case Action::Type::Start: {
      // The parent may have gone while the container was down (removed as a leftover by an
      // agent on another engine, or by hand); runc would make it again with no limits.
      // One that is there is left as it is: rewriting the limits of an existing group could
      // fail (v1 refuses a memory limit under what is still charged) and keep it down.
      if (auto known = containers_.find(action.containerId); cgroups_ && action.definition && known != containers_.end() &&
                                                              !known->second.cgroupParent.empty() &&
                                                              groupLimits(*action.definition) != CgroupLimits{} &&
                                                              !cgroups_->exists(known->second.cgroupParent, groupLimits(*action.definition))) {
        if (auto made = limitParent(known->second.cgroupParent, *action.definition); !made) {
          fail(action, made.error().message, /*stopsTask=*/true);
          break;
        }
      }
      auto r = co_await runtime_.start(action.containerId);
      if (!r && r.error().code == runtime::Error::Code::PortInUse) fail(action, std::string(kPortsInUse) + ": " + r.error().message);
      else if (!r) co_await failStart(action, r.error());
      else log_.about(fieldsOf(action)).info("{} {}: started {}", toString(action.kind), action.owner, action.containerName);
      auto info = co_await runtime_.inspect(action.containerId);
      if (info) upsert(info.value());
      break;
    }
    case Action::Type::Stop: {
      log_.about(fieldsOf(action)).info("{} {}: stopping {} ({}; SIGKILL after {} s)", toString(action.kind), action.owner, action.containerName,
                action.reason, action.stopTimeout.count());
      auto r = co_await runtime_.stop(action.containerId, action.stopTimeout);
      // NotFound: nothing left to stop (the container, or on containerd its task, is gone),
      // nothing to retry; the inspect below and the engine's events say what is left.
      const bool gone = !r && r.error().code == runtime::Error::Code::NotFound;
      if (!r && !gone) log_.about(fieldsOf(action)).error("{} {}: stop {} failed: {}", toString(action.kind), action.owner, action.containerName, r.error().message);
      noteStep(action, gone ? runtime::Status{runtime::Done{}} : r);
      auto info = co_await runtime_.inspect(action.containerId);
      if (info) {
        upsert(info.value());
        log_.about(fieldsOf(action)).info("{} {}: {} stopped (exit code {})", toString(action.kind), action.owner, action.containerName, info->exitCode);
      }
      break;
    }
    case Action::Type::Remove: {
      // Taken before the call: the engine's destroy event may be handled before its answer.
      std::optional<ObservedContainer> removed;
      if (auto known = containers_.find(action.containerId); known != containers_.end()) removed = known->second;
      auto r = co_await runtime_.remove(action.containerId);
      noteStep(action, r || r.error().code == runtime::Error::Code::NotFound ? runtime::Status{runtime::Done{}} : r);
      if (!r && r.error().code != runtime::Error::Code::NotFound) {
        log_.about(fieldsOf(action)).error("{} {}: remove {} failed: {}", toString(action.kind), action.owner, action.containerName, r.error().message);
      } else {
        erase(action.containerId);
        if (removed) removeVolumesOfGoneCopy(*removed);
      }
      break;
    }
  }
}

// The namespace holder of an awsvpc copy: the task network and the holder's image are
// made on first use, by the agent itself (no registry is needed).
asio::awaitable<runtime::Result<runtime::ContainerSpec>> Executor::networkHolderSpec(const Action& action) {
  if (!network_) co_return runtime::Error{runtime::Error::Code::Unsupported, "awsvpc: no task network is configured"};
  if (!networkReady_) {
    runtime::NetworkSpec spec{network_->name, network_->subnet, {{label::kManaged, "true"}}};
    auto made = co_await runtime_.ensureNetwork(std::move(spec));
    if (!made) co_return made.error();
    networkReady_ = true;
    log_.info("task network {} ({}) is there", network_->name, network_->subnet);
  }
  const std::string image = pauseImageName();
  if (!imagesPresent_.count(image)) {
    const std::filesystem::path archive = std::filesystem::path(network_->archiveDir) / "network-holder-image.tar";
    if (!writeFileAtomically(archive, pauseImageArchive()))
      co_return runtime::Error{runtime::Error::Code::PermissionDenied, "cannot write " + archive.string()};
    auto loaded = co_await runtime_.loadImage(archive.string());
    std::error_code ec;
    std::filesystem::remove(archive, ec);
    if (!loaded) co_return loaded.error();
    imagesPresent_.insert(image);
    log_.info("network holder image {} loaded", image);
  }
  const config::TaskDefinition& def = *action.definition;
  co_return buildNetworkHolderSpec(action.kind, def, action.kind == Kind::Task ? action.owner : "", instanceId_, image, network_->name);
}

// The engine says "failed to initialize logging driver" when a log driver cannot start
// (awslogs without AWS credentials, splunk without its server), but not which one.
asio::awaitable<void> Executor::failStart(const Action& action, runtime::Error error) {
  if (error.message.find("logging driver") == std::string::npos) {
    fail(action, error.message);
    co_return;
  }
  auto info = co_await runtime_.inspect(action.containerId);
  const std::string driver = info && !info->logDriver.empty() ? info->logDriver : "(unknown)";
  const std::string container = info && info->labels.count(label::kContainer) ? info->labels.at(label::kContainer) : action.containerName;
  fail(action,
       fmt::format("log driver {} of container {} cannot start on this host: {}. Map it to a driver this host can use with "
                   "logDrivers in the agent config, e.g. logDrivers: {{{}: journald}}", driver, container, error.message, driver),
       /*stopsTask=*/true);
}

asio::awaitable<void> Executor::create(const Action& action) {
  const config::TaskDefinition& def = *action.definition;
  if (auto refused = preparation_.refusedOnHost(action.kind, def); !refused.empty()) {
    fail(action, refused, /*stopsTask=*/true);  // a symbolic link led outside taskPolicy
    co_return;
  }
  const std::string copy = copyKey(action.kind, action.owner, def.hash);
  CountIn creating(creatingCopy_, copy);
  co_await awaitVolumeRemoval(copy);
  // The parent first: a copy that cannot have one makes nothing, not even its volumes.
  // Counted from here on, so that the removal of an old container cannot take it away.
  auto parent = placeInCgroup(action);
  if (!parent) {
    fail(action, parent.error().message, /*stopsTask=*/true);
    co_return;
  }
  CreatingIn underWay(*this, parent->value_or(""));
  if (action.container == kNetworkHolder) {
    // Not even the holder of a task that cannot start (a secret, a volume, a log driver).
    const std::string taskId = action.kind == Kind::Task ? action.owner : "";
    auto ready = co_await preparation_.prepare(action.kind, def, taskId, def.containers.front().name,
                                               buildContainerSpec(action.kind, def, taskId, def.containers.front(), instanceId_));
    if (!ready) {
      fail(action, ready.error().message, /*stopsTask=*/true);
      co_return;
    }
    auto spec = co_await networkHolderSpec(action);
    if (!spec) {
      fail(action, spec.error().message);
      co_return;
    }
    spec->cgroupParent = parent.value();
    auto id = co_await createResolvingConflict(action, spec.value());
    if (!id) {
      fail(action, id.error().message);
      co_return;
    }
    underWay.created = true;
    auto info = co_await runtime_.inspect(id.value());
    if (info) upsert(info.value());
    co_return;
  }
  const config::ContainerDefinition* container = def.container(action.container);
  if (!container) co_return;
  if (!imagesPresent_.count(container->image)) {
    auto image = co_await runtime_.ensureImage(container->image);
    if (!image) {
      fail(action, image.error().message);
      co_return;
    }
    imagesPresent_.insert(container->image);
  }
  std::string envError;
  auto fromFiles = readEnvironmentFiles(container->environmentFiles, envError);
  if (!envError.empty()) {
    fail(action, envError);
    co_return;
  }
  const std::string taskId = action.kind == Kind::Task ? action.owner : "";
  auto prepared = co_await preparation_.prepare(action.kind, def, taskId, container->name,
                                                buildContainerSpec(action.kind, def, taskId, *container, instanceId_, fromFiles));
  if (!prepared) {
    fail(action, prepared.error().message, /*stopsTask=*/true);
    co_return;
  }
  runtime::ContainerSpec spec = std::move(prepared.value());
  spec.cgroupParent = parent.value();
  auto id = co_await createResolvingConflict(action, spec);
  if (!id && id.error().code == runtime::Error::Code::NotFound && id.error().message.find("image") != std::string::npos) {
    // The image went away since it was checked (docker image prune -a): fetch it again.
    imagesPresent_.erase(container->image);
    log_.about(fieldsOf(action)).warn("{} {}: {}; ensuring image {} again", toString(action.kind), action.owner, id.error().message, container->image);
    auto image = co_await runtime_.ensureImage(container->image);
    if (!image) {
      fail(action, image.error().message);
      co_return;
    }
    imagesPresent_.insert(container->image);
    id = co_await createResolvingConflict(action, spec);
  }
  if (!id) {
    fail(action, id.error().message);
    co_return;
  }
  underWay.created = true;
  auto info = co_await runtime_.inspect(id.value());
  if (info) upsert(info.value());
}

// A 409 on create means the name is taken. The engine says by what: our own container
// (a create whose answer was lost, or that a listing missed) is adopted; anything else is
// reported by id and left alone. Never a blind retry.
asio::awaitable<runtime::Result<std::string>> Executor::createResolvingConflict(const Action& action, runtime::ContainerSpec spec) {
  auto id = co_await runtime_.create(spec);
  if (id || id.error().code != runtime::Error::Code::Conflict) co_return id;
  auto holder = co_await runtime_.inspect(spec.name);
  if (!holder) {
    if (holder.error().code != runtime::Error::Code::NotFound) co_return holder.error();
    co_return co_await runtime_.create(spec);  // the holder went away meanwhile
  }
  const auto& labels = holder->labels;
  auto is = [&](const char* key) {
    auto a = labels.find(key);
    auto b = spec.labels.find(key);
    return a != labels.end() && b != spec.labels.end() && a->second == b->second;
  };
  if (is(label::kManaged) && is(label::kInstance) && is(label::kKind) && is(label::kHash) && is(label::kContainer) &&
      (action.kind == Kind::Daemon ? is(label::kFamily) : is(label::kTaskId))) {
    log_.about(fieldsOf(action)).info("{} {}: container {} already exists as {} (a create this agent did not see finish); adopting it", toString(action.kind),
              action.owner, spec.name, holder->id.substr(0, 12));
    co_return holder->id;
  }
  auto managed = labels.find(label::kManaged);
  auto instance = labels.find(label::kInstance);
  const bool ours = managed != labels.end() && managed->second == "true" && instance != labels.end();
  co_return runtime::Error{runtime::Error::Code::Conflict,
                           fmt::format("the name {} is taken by container {} ({}); daemonlet leaves it alone: remove or rename it", spec.name,
                                       holder->id.substr(0, 12), ours ? "managed by instance '" + instance->second + "'" : "not managed by daemonlet")};
}

std::vector<std::string> readEnvironmentFiles(const std::vector<std::string>& paths, std::string& error) {
  std::vector<std::string> out;
  for (const auto& path : paths) {
    std::ifstream in(path);
    if (!in) {
      error = "cannot read environment file " + path;
      return {};
    }
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#' || line.find('=') == std::string::npos) continue;
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace daemonlet::agent
