#include "runtime/containerd/ContainerdRuntime.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <google/protobuf/util/time_util.h>

#include "event_types.pb.h"
#include "runtime/containerd/ContainerdClient.h"
#include "runtime/containerd/ImageReference.h"
#include "runtime/containerd/OciSpec.h"

namespace daemonlet::runtime {
namespace {

using namespace containerd;
using nlohmann::json;
using std::chrono::milliseconds;

const char* const kSpecTypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const char* const kProcessTypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const char* const kRuncShim = "io.containerd.runc.v2";
const char* const kInternal = "io.daemonlet.containerd/";  // our own labels; never shown as the user's
const std::string kStartedAt = std::string(kInternal) + "started-at";
const std::string kImageRef = std::string(kInternal) + "image";
const char* const kSyncTopic = "/daemonlet/watch-sync";
constexpr std::int64_t kMinimumMemory = 6 * 1024 * 1024;  // Docker's rule, kept so both engines agree

std::string socketPathOf(const std::string& endpoint) {
  constexpr std::string_view scheme = "unix://";
  return endpoint.rfind(scheme, 0) == 0 ? endpoint.substr(scheme.size()) : endpoint;
}

// containerd sends Go's zero time (year 1) for what has not happened, e.g. the exit time of
// a task killed before it started. Nanoseconds since 1970 cannot hold it (UBSan: a signed
// overflow; they span about 1678-2262): a time before 1970 or after 2200, which no
// container has, comes back as not known, as Docker's parser does.
std::optional<Clock::time_point> knownTimeOf(const google::protobuf::Timestamp& t) {
  constexpr std::int64_t kYear2200 = 7258118400;
  if (t.seconds() < 0 || t.seconds() > kYear2200) return std::nullopt;
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(t.seconds()) + std::chrono::nanoseconds(t.nanos())));
}

Clock::time_point timeOf(const google::protobuf::Timestamp& t) { return knownTimeOf(t).value_or(Clock::time_point{}); }

bool matches(const Labels& labels, const LabelSelector& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

Labels userLabels(const google::protobuf::Map<std::string, std::string>& all) {
  Labels out;
  for (const auto& [k, v] : all) if (k.rfind(kInternal, 0) != 0) out[k] = v;
  return out;
}

// The memory cgroup's OOM-kill counter; runc keeps the cgroup until the task is deleted.
bool oomKilledIn(const std::string& cgroupsPath) {
  for (const std::string& file : {"/sys/fs/cgroup/memory" + cgroupsPath + "/memory.oom_control", "/sys/fs/cgroup" + cgroupsPath + "/memory.events"}) {
    std::ifstream in(file);
    for (std::string key; in >> key;) {
      long long value = 0;
      in >> value;
      if (key == "oom_kill" && value > 0) return true;
    }
  }
  return false;
}

// The parent the container's cgroup was placed under ("" for our default, /daemonlet).
std::string cgroupParentOf(const json& spec) {
  std::string path = spec.value("/linux/cgroupsPath"_json_pointer, std::string());
  path = path.substr(0, path.rfind('/'));
  return path == "/daemonlet" ? "" : path;
}

// What a worker learns about one container.
struct Record {
  ContainerInfo info;
  std::optional<HealthCheckSpec> check;
};

}  // namespace

class ContainerdRuntime::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, std::string socketPath, Options options)
      : executor(std::move(executor)), options(std::move(options)),
        client(std::make_shared<ContainerdClient>(std::move(socketPath), this->options.ns, this->options.callDeadline)),
        pool(static_cast<std::size_t>(std::max(1, this->options.workers))) {}

  asio::any_io_executor executor;
  Options options;
  std::shared_ptr<ContainerdClient> client;
  asio::thread_pool pool;

  // Runs `work` on a worker thread; its result comes back on the caller's executor.
  // Callers name the awaitable before co_await-ing it: GCC 12 destroys a lambda temporary
  // inside a co_await expression twice (a double free of every capture).
  template <class F>
  auto offload(F&& work) -> asio::awaitable<decltype(work())> {
    using R = decltype(work());
    auto initiate = [this, work = std::decay_t<F>(std::forward<F>(work))](auto handler) mutable {
      auto ex = asio::get_associated_executor(handler, executor);
      asio::post(pool, [work = std::move(work), handler = std::move(handler), ex]() mutable {
        std::optional<R> result;
        try {
          result.emplace(work());
        } catch (const std::exception& e) {
          result.emplace(Error{Error::Code::Protocol, std::string("containerd call failed: ") + e.what()});
        }
        asio::post(ex, [result = std::move(*result), handler = std::move(handler)]() mutable { std::move(handler)(std::move(result)); });
      });
    };
    return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(std::move(initiate), asio::use_awaitable);
  }

  std::string logPath(const std::string& id) const { return options.logDir + "/" + id + ".log"; }

  // ---- worker-side sequences (blocking; never on the caller's thread) ----

  static Result<pb::containers::Container> getContainer(ContainerdClient& c, const std::string& id) {
    pb::containers::GetContainerRequest req;
    req.set_id(id);
    pb::containers::GetContainerResponse resp;
    auto ctx = c.context();
    if (auto s = c.containers->Get(ctx.get(), req, &resp); !s.ok()) {
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) return Error{Error::Code::NotFound, fmt::format("no such container: {}", id)};
      return c.error(s, "get container " + id);
    }
    return resp.container();
  }

  // nullopt: the container has no task.
  static Result<std::optional<pb::task::Process>> getTask(ContainerdClient& c, const std::string& id, const std::string& execId = {}) {
    pb::tasks::GetRequest req;
    req.set_container_id(id);
    req.set_exec_id(execId);
    pb::tasks::GetResponse resp;
    auto ctx = c.context();
    if (auto s = c.tasks->Get(ctx.get(), req, &resp); !s.ok()) {
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::optional<pb::task::Process>();
      return c.error(s, "get task " + id);
    }
    return std::optional<pb::task::Process>(resp.process());
  }

  static bool alive(const pb::task::Process& p) {
    return p.status() == pb::task::RUNNING || p.status() == pb::task::PAUSED || p.status() == pb::task::PAUSING;
  }

  static Result<Record> record(ContainerdClient& c, const pb::containers::Container& container) {
    Record r;
    ContainerInfo& info = r.info;
    info.id = container.id();
    info.name = container.id();
    const auto& labels = container.labels();
    info.labels = userLabels(labels);
    info.image = labels.count(kImageRef) ? labels.at(kImageRef) : container.image();
    info.createdAt = knownTimeOf(container.created_at());
    const json spec = json::parse(container.spec().value(), nullptr, false);
    if (spec.is_object()) {
      const auto limits = limitsOf(spec);
      info.memoryBytes = limits.memoryBytes;
      info.cpuShares = limits.cpuShares;
      info.nanoCpus = limits.nanoCpus;
      r.check = decodeHealthCheck(spec);
      info.cgroupParent = cgroupParentOf(spec);
    }
    if (auto it = labels.find(kStartedAt); it != labels.end())
      info.startedAt = Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(std::stoll(it->second))));
    auto task = getTask(c, container.id());
    if (!task) return task.error();
    if (!task.value()) {
      // Never started, or its task is gone (a host reboot): a stopped container.
      info.state = info.startedAt ? ContainerState::Exited : ContainerState::Created;
      if (info.startedAt) info.exitCode = 255;
      return r;
    }
    const auto& p = *task.value();
    switch (p.status()) {
      case pb::task::RUNNING: info.state = ContainerState::Running; break;
      case pb::task::PAUSED:
      case pb::task::PAUSING: info.state = ContainerState::Paused; break;
      case pb::task::CREATED: info.state = ContainerState::Created; break;
      case pb::task::STOPPED:
        info.state = ContainerState::Exited;
        info.exitCode = static_cast<int>(p.exit_status());
        info.finishedAt = knownTimeOf(p.exited_at());
        info.oomKilled = spec.is_object() && oomKilledIn(spec.value("/linux/cgroupsPath"_json_pointer, std::string()));
        break;
      default: info.state = ContainerState::Unknown;
    }
    return r;
  }

  static Result<Record> inspectOn(ContainerdClient& c, const std::string& id) {
    auto container = getContainer(c, id);
    if (!container) return container.error();
    return record(c, container.value());
  }

  static Result<std::vector<Record>> listOn(ContainerdClient& c, const LabelSelector& selector) {
    pb::containers::ListContainersRequest req;
    std::string filter;
    for (const auto& [k, v] : selector) filter += (filter.empty() ? "" : ",") + fmt::format("labels.{}=={}", quoted(k), quoted(v));
    if (!filter.empty()) req.add_filters(filter);
    pb::containers::ListContainersResponse resp;
    auto ctx = c.context();
    if (auto s = c.containers->List(ctx.get(), req, &resp); !s.ok()) return c.error(s, "list containers");
    std::vector<Record> out;
    for (const auto& container : resp.containers()) {
      auto r = record(c, container);
      if (r) out.push_back(std::move(r.value()));
      else if (r.error().code != Error::Code::NotFound) return r.error();
    }
    return out;
  }

  Result<std::string> createOn(const ContainerSpec& spec) {
    ContainerdClient& c = *client;
    const std::string what = fmt::format("create container {}", spec.name);
    static const std::regex validId("[A-Za-z0-9]+([._-][A-Za-z0-9]+)*");
    if (spec.name.size() > 76 || !std::regex_match(spec.name, validId))
      return Error{Error::Code::Engine, fmt::format("{}: containerd ids are letters and digits joined by . _ or -, at most 76 long", what)};
    if (spec.memoryBytes && *spec.memoryBytes < kMinimumMemory)
      return Error{Error::Code::Engine, fmt::format("{}: memory limit {} bytes is below the minimum of 6 MB", what, *spec.memoryBytes)};
    if (auto existing = getContainer(c, spec.name); existing)
      return Error{Error::Code::Conflict, fmt::format("{}: the name {} is already in use in namespace {}", what, spec.name, c.ns())};
    auto image = c.resolveImage(spec.image);
    if (!image) return Error{image.error().code, fmt::format("{}: {}", what, image.error().message)};
    auto lease = c.createLease(std::chrono::minutes(10));
    if (!lease) return lease.error();
    if (!c.unpacked(image.value())) {
      if (auto s = c.unpack(image.value(), lease->id()); !s) return Error{s.error().code, what + ": " + s.error().message};
    }
    // cgroupfs paths only: runc's systemd driver would need the shim's SystemdCgroup option.
    const std::string parent = spec.cgroupParent.value_or("/daemonlet");
    if (parent.empty() || parent.front() != '/')
      return Error{Error::Code::Unsupported,
                   fmt::format("{}: cgroup parent \"{}\": the containerd adapter places containers with cgroupfs paths (/a/b), not systemd slices",
                               what, parent)};
    auto built = buildSpec(spec, image->imageConfig, {parent + "/" + spec.name, spec.name.substr(0, 63)});
    if (!built) return built.error();

    auto removeSnapshot = [&] {
      pb::snapshots::RemoveSnapshotRequest rm;
      rm.set_snapshotter(kSnapshotter);
      rm.set_key(spec.name);
      google::protobuf::Empty empty;
      auto ctx = c.context(c.callDeadline(), lease->id());
      c.snapshots->Remove(ctx.get(), rm, &empty);
    };
    pb::snapshots::PrepareSnapshotRequest prepare;
    prepare.set_snapshotter(kSnapshotter);
    prepare.set_key(spec.name);
    prepare.set_parent(image->chainId);
    pb::snapshots::PrepareSnapshotResponse prepared;
    auto ctx = c.context(c.callDeadline(), lease->id());
    auto s = c.snapshots->Prepare(ctx.get(), prepare, &prepared);
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {  // left by a create that died before its container was made
      removeSnapshot();
      auto retry = c.context(c.callDeadline(), lease->id());
      s = c.snapshots->Prepare(retry.get(), prepare, &prepared);
    }
    if (!s.ok()) return c.error(s, what + ": prepare snapshot");

    pb::containers::CreateContainerRequest req;
    auto* container = req.mutable_container();
    container->set_id(spec.name);
    for (const auto& [k, v] : spec.labels) (*container->mutable_labels())[k] = v;
    (*container->mutable_labels())[kImageRef] = spec.image;
    container->set_image(image->name);
    container->mutable_runtime()->set_name(kRuncShim);
    container->mutable_spec()->set_type_url(kSpecTypeUrl);
    container->mutable_spec()->set_value(built->dump());
    container->set_snapshotter(kSnapshotter);
    container->set_snapshot_key(spec.name);
    pb::containers::CreateContainerResponse resp;
    auto cctx = c.context(c.callDeadline(), lease->id());
    if (auto cs = c.containers->Create(cctx.get(), req, &resp); !cs.ok()) {
      removeSnapshot();
      if (cs.error_code() == grpc::StatusCode::ALREADY_EXISTS)
        return Error{Error::Code::Conflict, fmt::format("{}: the name {} is already in use", what, spec.name)};
      return c.error(cs, what);
    }
    return spec.name;
  }

  static Status deleteTask(ContainerdClient& c, const std::string& id) {
    pb::tasks::DeleteTaskRequest req;
    req.set_container_id(id);
    pb::tasks::DeleteResponse resp;
    auto ctx = c.context();
    auto s = c.tasks->Delete(ctx.get(), req, &resp);
    if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND) return c.error(s, "delete task " + id);
    return Done{};
  }

  Result<std::optional<HealthCheckSpec>> startOn(const std::string& id) {
    ContainerdClient& c = *client;
    const std::string what = "start container " + id;
    auto container = getContainer(c, id);
    if (!container) return container.error();
    auto task = getTask(c, id);
    if (!task) return task.error();
    const json spec = json::parse(container->spec().value(), nullptr, false);
    auto check = spec.is_object() ? decodeHealthCheck(spec) : std::nullopt;
    if (task.value() && alive(*task.value())) return check;  // already running
    if (task.value()) {
      if (auto s = deleteTask(c, id); !s) return s.error();
    }
    pb::snapshots::MountsRequest mreq;
    mreq.set_snapshotter(container->snapshotter().empty() ? kSnapshotter : container->snapshotter());
    mreq.set_key(container->snapshot_key());
    pb::snapshots::MountsResponse mounts;
    if (auto ctx = c.context(); true) {
      if (auto s = c.snapshots->Mounts(ctx.get(), mreq, &mounts); !s.ok()) return c.error(s, what + ": snapshot mounts");
    }
    std::filesystem::create_directories(options.logDir);
    pb::tasks::CreateTaskRequest create;
    create.set_container_id(id);
    *create.mutable_rootfs() = mounts.mounts();
    create.set_stdout("file://" + logPath(id));
    create.set_stderr("file://" + logPath(id));
    pb::tasks::CreateTaskResponse created;
    if (auto ctx = c.context(); true) {
      if (auto s = c.tasks->Create(ctx.get(), create, &created); !s.ok()) return c.error(s, what);
    }
    pb::tasks::StartRequest start;
    start.set_container_id(id);
    pb::tasks::StartResponse started;
    if (auto ctx = c.context(); true) {
      if (auto s = c.tasks->Start(ctx.get(), start, &started); !s.ok()) {
        deleteTask(c, id);
        return c.error(s, what);
      }
    }
    pb::containers::UpdateContainerRequest update;
    update.mutable_container()->set_id(id);
    (*update.mutable_container()->mutable_labels())[kStartedAt] =
        std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
    update.mutable_update_mask()->add_paths("labels." + kStartedAt);
    pb::containers::UpdateContainerResponse updated;
    if (auto ctx = c.context(); true) {
      if (auto s = c.containers->Update(ctx.get(), update, &updated); !s.ok()) return c.error(s, what + ": record start time");
    }
    return check;
  }

  static Status signal(ContainerdClient& c, const std::string& id, const std::string& execId, int sig, bool all) {
    pb::tasks::KillRequest req;
    req.set_container_id(id);
    req.set_exec_id(execId);
    req.set_signal(static_cast<std::uint32_t>(sig));
    req.set_all(all);
    google::protobuf::Empty empty;
    auto ctx = c.context();
    if (auto s = c.tasks->Kill(ctx.get(), req, &empty); !s.ok()) return c.error(s, fmt::format("signal {} to {}", sig, id));
    return Done{};
  }

  // The exit status, or Timeout when it did not exit within `limit`.
  static Result<int> wait(ContainerdClient& c, const std::string& id, const std::string& execId, milliseconds limit) {
    pb::tasks::WaitRequest req;
    req.set_container_id(id);
    req.set_exec_id(execId);
    pb::tasks::WaitResponse resp;
    auto ctx = c.context(limit);
    if (auto s = c.tasks->Wait(ctx.get(), req, &resp); !s.ok()) return c.error(s, "wait for " + id);
    return static_cast<int>(resp.exit_status());
  }

  Status stopOn(const std::string& id, std::chrono::seconds timeout) {
    ContainerdClient& c = *client;
    auto container = getContainer(c, id);
    if (!container) return container.error();
    auto task = getTask(c, id);
    if (!task) return task.error();
    if (!task.value() || !alive(*task.value())) return Done{};  // stopping a stopped container succeeds
    if (auto s = signal(c, id, "", SIGTERM, false); !s && s.error().code != Error::Code::NotFound) return s;
    milliseconds grace = timeout;
    // A process that has just started may not have installed its SIGTERM handler yet, and
    // as PID 1 it ignores a signal it has no handler for: that SIGTERM is lost. Docker's
    // own latency hides this; containerd answers fast enough to hit it. So a container
    // stopped within 2 s of its start gets SIGTERM once more after a second.
    const auto& labels = container->labels();
    if (auto it = labels.find(kStartedAt); it != labels.end() && grace > std::chrono::seconds(1)) {
      const auto started = Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(std::stoll(it->second))));
      if (Clock::now() - started < std::chrono::seconds(2)) {
        if (wait(c, id, "", std::chrono::seconds(1))) return Done{};
        signal(c, id, "", SIGTERM, false);
        grace -= std::chrono::seconds(1);
      }
    }
    auto exited = wait(c, id, "", grace);
    if (exited) return Done{};
    if (exited.error().code != Error::Code::Timeout) return exited.error();
    if (auto s = signal(c, id, "", SIGKILL, true); !s && s.error().code != Error::Code::NotFound) return s;
    if (auto killed = wait(c, id, "", c.callDeadline()); !killed) return killed.error();
    return Done{};
  }

  Status killOn(const std::string& id, int sig) {
    ContainerdClient& c = *client;
    auto container = getContainer(c, id);
    if (!container) return container.error();
    auto task = getTask(c, id);
    if (!task) return task.error();
    if (!task.value() || !alive(*task.value())) return Error{Error::Code::Conflict, fmt::format("kill container {}: it is not running", id)};
    return signal(c, id, "", sig, false);
  }

  Status removeOn(const std::string& id) {
    ContainerdClient& c = *client;
    const std::string what = "remove container " + id;
    auto container = getContainer(c, id);
    if (!container) return container.error().code == Error::Code::NotFound ? Status(Done{}) : Status(container.error());
    auto task = getTask(c, id);
    if (!task) return task.error();
    if (task.value()) {
      if (alive(*task.value()) || task.value()->status() == pb::task::CREATED) {
        signal(c, id, "", SIGKILL, true);
        wait(c, id, "", c.callDeadline());
      }
      if (auto s = deleteTask(c, id); !s) return s;
    }
    pb::containers::DeleteContainerRequest del;
    del.set_id(id);
    google::protobuf::Empty empty;
    if (auto ctx = c.context(); true) {
      auto s = c.containers->Delete(ctx.get(), del, &empty);
      if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND) return c.error(s, what);
    }
    pb::snapshots::RemoveSnapshotRequest rm;
    rm.set_snapshotter(container->snapshotter().empty() ? kSnapshotter : container->snapshotter());
    rm.set_key(container->snapshot_key());
    if (auto ctx = c.context(); true) {
      auto s = c.snapshots->Remove(ctx.get(), rm, &empty);
      if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND) return c.error(s, what + ": remove snapshot");
    }
    std::error_code ec;
    std::filesystem::remove(logPath(id), ec);
    return Done{};
  }

  // One exec probe, the way the CRI runs them: the container's process spec with other
  // args, SIGKILL at the timeout. Its exit status, or -1 for a timeout.
  static Result<int> probeOn(ContainerdClient& c, const std::string& id, const std::vector<std::string>& args, milliseconds timeout,
                             const std::string& execId) {
    auto container = getContainer(c, id);
    if (!container) return container.error();
    json spec = json::parse(container->spec().value(), nullptr, false);
    if (!spec.is_object() || !spec.contains("process")) return Error{Error::Code::Protocol, "container " + id + " has no process spec"};
    json process = spec["process"];
    process["args"] = args;
    process["terminal"] = false;
    pb::tasks::ExecProcessRequest exec;
    exec.set_container_id(id);
    exec.set_exec_id(execId);
    exec.set_stdout("file:///dev/null");
    exec.set_stderr("file:///dev/null");
    exec.mutable_spec()->set_type_url(kProcessTypeUrl);
    exec.mutable_spec()->set_value(process.dump());
    google::protobuf::Empty empty;
    if (auto ctx = c.context(); true) {
      if (auto s = c.tasks->Exec(ctx.get(), exec, &empty); !s.ok()) return c.error(s, "health check exec in " + id);
    }
    auto cleanup = [&] {
      pb::tasks::DeleteProcessRequest del;
      del.set_container_id(id);
      del.set_exec_id(execId);
      pb::tasks::DeleteResponse resp;
      auto ctx = c.context();
      c.tasks->DeleteProcess(ctx.get(), del, &resp);
    };
    pb::tasks::StartRequest start;
    start.set_container_id(id);
    start.set_exec_id(execId);
    pb::tasks::StartResponse started;
    if (auto ctx = c.context(); true) {
      if (auto s = c.tasks->Start(ctx.get(), start, &started); !s.ok()) {
        cleanup();
        return c.error(s, "health check start in " + id);
      }
    }
    auto exited = wait(c, id, execId, timeout);
    if (!exited && exited.error().code == Error::Code::Timeout) {
      signal(c, id, execId, SIGKILL, false);
      wait(c, id, execId, c.callDeadline());
      cleanup();
      return -1;
    }
    cleanup();
    return exited;
  }

  // ---- caller-side state (only touched on the caller's executor) ----

  struct Prober {
    std::string id;
    Labels labels;
    HealthCheckSpec check;
    Health health = Health::Starting;
    int failures = 0;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    bool stopped = false;
    asio::steady_timer timer;
    Prober(asio::any_io_executor ex) : timer(std::move(ex)) {}
  };
  std::map<std::string, std::shared_ptr<Prober>> probers;
  std::map<std::string, Labels> labelCache;  // for events, which carry no labels
  std::uint64_t execCounter = 0;

  struct Watch {
    LabelSelector selector;
    EventHandlers handlers;
    std::string token;
    std::atomic<bool> stopped{false};
    std::mutex mutex;
    std::condition_variable wake;
    grpc::ClientContext* stream = nullptr;  // guarded by mutex
    std::thread thread;
    std::deque<pb::events::Envelope> queue;
    bool draining = false;
  };
  std::shared_ptr<Watch> watch;
  bool shutDown = false;

  void remember(const Record& r) {
    labelCache[r.info.id] = r.info.labels;
    if (!r.check || !r.info.running()) return;
    if (auto it = probers.find(r.info.id); it != probers.end() && !it->second->stopped) return;
    startProber(r.info.id, r.info.labels, *r.check);  // adopted: a running container we did not start
  }

  ContainerInfo withHealth(ContainerInfo info) const {
    if (auto it = probers.find(info.id); it != probers.end()) info.health = it->second->health;
    return info;
  }

  void emit(const RuntimeEvent& event) {
    if (watch && !watch->stopped && matches(event.labels, watch->selector) && watch->handlers.onEvent) watch->handlers.onEvent(event);
  }

  void setHealth(Prober& p, Health health) {
    if (p.health == health) return;
    p.health = health;
    RuntimeEvent ev;
    ev.kind = RuntimeEvent::Kind::HealthChanged;
    ev.containerId = p.id;
    ev.labels = p.labels;
    ev.health = health;
    ev.time = Clock::now();
    emit(ev);
  }

  void stopProber(const std::string& id, bool forget) {
    auto it = probers.find(id);
    if (it == probers.end()) return;
    it->second->stopped = true;
    it->second->timer.cancel();
    if (forget) probers.erase(it);
  }

  void startProber(const std::string& id, const Labels& labels, const HealthCheckSpec& check) {
    stopProber(id, true);
    auto p = std::make_shared<Prober>(executor);
    p->id = id;
    p->labels = labels;
    p->check = check;
    probers[id] = p;
    asio::co_spawn(executor, [self = shared_from_this(), p]() -> asio::awaitable<void> {
      const auto args = probeArgs(p->check.test);
      while (!p->stopped) {
        p->timer.expires_after(p->check.interval);
        boost::system::error_code ec;
        co_await p->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (p->stopped || self->shutDown) break;
        const std::string execId = fmt::format("health-{}", ++self->execCounter);
        auto client = self->client;
        const auto timeout = p->check.timeout;
        auto pending = self->offload([client, id = p->id, args, timeout, execId] { return probeOn(*client, id, args, timeout, execId); });
        auto result = co_await std::move(pending);
        if (p->stopped) break;
        if (!result && (result.error().code == Error::Code::NotFound || result.error().code == Error::Code::Conflict)) {
          p->stopped = true;  // the task is gone; Docker keeps the last status
          break;
        }
        if (result && result.value() == 0) {
          p->failures = 0;
          self->setHealth(*p, Health::Healthy);
          continue;
        }
        const bool inStartPeriod = std::chrono::steady_clock::now() - p->started < p->check.startPeriod;
        if (inStartPeriod && p->health == Health::Starting) continue;  // failures then do not count
        if (++p->failures >= std::max(1, p->check.retries)) self->setHealth(*p, Health::Unhealthy);
      }
    }, asio::detached);
  }

  // Events arrive on the watch thread and are handled here, one at a time and in order,
  // because an unknown container's labels must be fetched before its event can be matched.
  void enqueue(const std::shared_ptr<Watch>& w, pb::events::Envelope envelope) {
    if (w->stopped) return;
    w->queue.push_back(std::move(envelope));
    if (w->draining) return;
    w->draining = true;
    asio::co_spawn(executor, [self = shared_from_this(), w]() -> asio::awaitable<void> {
      while (!w->queue.empty() && !w->stopped) {
        auto envelope = std::move(w->queue.front());
        w->queue.pop_front();
        co_await self->handle(w, envelope);
      }
      w->draining = false;
    }, [w](std::exception_ptr e) {
      w->draining = false;
      if (e && w->handlers.onDisconnect) w->handlers.onDisconnect(Error{Error::Code::Protocol, "event handler failed"});
    });
  }

  asio::awaitable<void> resync(std::shared_ptr<Watch> w) {
    auto client = this->client;
    auto pending = offload([client, selector = w->selector] { return listOn(*client, selector); });
    auto snapshot = co_await std::move(pending);
    if (w->stopped) co_return;
    if (!snapshot) {
      if (w->handlers.onDisconnect) w->handlers.onDisconnect(snapshot.error());
      co_return;
    }
    std::vector<ContainerInfo> infos;
    for (const auto& r : snapshot.value()) {
      remember(r);
      infos.push_back(withHealth(r.info));
    }
    if (w->handlers.onResync) w->handlers.onResync(infos);
  }

  asio::awaitable<void> handle(std::shared_ptr<Watch> w, const pb::events::Envelope& envelope) {
    const std::string& topic = envelope.topic();
    const std::string& payload = envelope.event().value();
    if (topic == kSyncTopic) {
      if (payload == w->token) co_await resync(w);  // subscribed: now the snapshot
      co_return;
    }
    RuntimeEvent ev;
    ev.time = timeOf(envelope.timestamp());
    if (topic == "/tasks/start") {
      ::containerd::events::TaskStart e;
      if (!e.ParseFromString(payload)) co_return;
      ev.kind = RuntimeEvent::Kind::Start;
      ev.containerId = e.container_id();
    } else if (topic == "/tasks/exit") {
      ::containerd::events::TaskExit e;
      if (!e.ParseFromString(payload) || e.id() != e.container_id()) co_return;  // exec processes (health checks) exit too
      ev.kind = RuntimeEvent::Kind::Exit;
      ev.containerId = e.container_id();
      ev.exitCode = static_cast<int>(e.exit_status());
      if (auto exited = knownTimeOf(e.exited_at())) ev.time = *exited;
    } else if (topic == "/tasks/oom") {
      ::containerd::events::TaskOOM e;
      if (!e.ParseFromString(payload)) co_return;
      ev.kind = RuntimeEvent::Kind::Oom;
      ev.containerId = e.container_id();
    } else if (topic == "/containers/delete") {
      ::containerd::events::ContainerDelete e;
      if (!e.ParseFromString(payload)) co_return;
      ev.kind = RuntimeEvent::Kind::Destroy;
      ev.containerId = e.id();
    } else {
      co_return;
    }
    auto cached = labelCache.find(ev.containerId);
    if (cached == labelCache.end() && ev.kind != RuntimeEvent::Kind::Destroy) {
      auto client = this->client;
      auto pending = offload([client, id = ev.containerId] { return getContainer(*client, id); });
      auto container = co_await std::move(pending);
      if (!container) co_return;  // gone meanwhile: its destroy event follows
      cached = labelCache.emplace(ev.containerId, userLabels(container->labels())).first;
    }
    if (cached == labelCache.end()) co_return;
    ev.labels = cached->second;
    if (ev.kind == RuntimeEvent::Kind::Destroy) labelCache.erase(cached);
    emit(ev);
  }

  void startWatch(LabelSelector selector, EventHandlers handlers) {
    auto w = std::make_shared<Watch>();
    w->selector = std::move(selector);
    w->handlers = std::move(handlers);
    w->token = fmt::format("{}-{}", reinterpret_cast<std::uintptr_t>(w.get()), Clock::now().time_since_epoch().count());
    watch = w;
    auto client = this->client;
    auto ex = executor;
    std::weak_ptr<Impl> weak = weak_from_this();
    const auto initial = options.reconnectInitial, maximum = options.reconnectMax;
    w->thread = std::thread([w, client, ex, weak, initial, maximum] {
      auto delay = initial;
      while (!w->stopped) {
        auto ctx = client->context(std::nullopt);
        {
          std::lock_guard lock(w->mutex);
          if (w->stopped) break;
          w->stream = ctx.get();
        }
        pb::events::SubscribeRequest req;
        // Subscribe ignores the namespace header: every filter names it.
        const std::string ns = "namespace==" + quoted(client->ns());
        for (const char* topic : {"/tasks/start", "/tasks/exit", "/tasks/oom", "/containers/delete", kSyncTopic})
          req.add_filters(fmt::format("{},topic=={}", ns, quoted(topic)));
        auto reader = client->events->Subscribe(ctx.get(), req);
        // No replay and no "subscribed" signal: publish a marker of our own until it comes
        // back through the stream; from then on nothing is missed, and we list.
        std::atomic<bool> seen{false}, ended{false};
        std::thread publisher([&] {
          pb::events::PublishRequest marker;
          marker.set_topic(kSyncTopic);
          marker.mutable_event()->set_type_url("daemonlet.io/WatchSync");
          marker.mutable_event()->set_value(w->token);
          while (!seen && !ended && !w->stopped) {
            google::protobuf::Empty empty;
            auto pctx = client->context(std::chrono::milliseconds(2000));
            client->events->Publish(pctx.get(), marker, &empty);
            std::unique_lock lock(w->mutex);
            w->wake.wait_for(lock, std::chrono::milliseconds(300), [&] { return seen || ended || w->stopped; });
          }
        });
        bool opened = false;
        pb::events::Envelope envelope;
        while (reader->Read(&envelope)) {
          if (envelope.topic() == kSyncTopic) {
            if (envelope.event().value() != w->token || seen.exchange(true)) continue;  // another watcher's, or a repeat
            opened = true;
            w->wake.notify_all();
          }
          asio::post(ex, [weak, w, envelope] {
            if (auto self = weak.lock()) self->enqueue(w, envelope);
          });
        }
        ended = true;
        w->wake.notify_all();
        publisher.join();
        const auto status = reader->Finish();
        {
          std::lock_guard lock(w->mutex);
          w->stream = nullptr;
        }
        if (w->stopped) break;
        Error lost = client->error(status, "containerd event stream");
        if (status.ok()) lost = Error{Error::Code::Unavailable, "containerd event stream ended"};
        asio::post(ex, [w, lost] {
          if (!w->stopped && w->handlers.onDisconnect) w->handlers.onDisconnect(lost);
        });
        if (opened) delay = initial;
        std::unique_lock lock(w->mutex);
        w->wake.wait_for(lock, delay, [&] { return w->stopped.load(); });
        delay = std::min(delay * 2, maximum);
      }
    });
  }

  void endWatch() {
    if (!watch) return;
    auto w = std::move(watch);
    {
      std::lock_guard lock(w->mutex);
      w->stopped = true;
      if (w->stream) w->stream->TryCancel();
    }
    w->wake.notify_all();
    if (w->thread.joinable()) w->thread.join();
  }

  void shutdown() {
    shutDown = true;
    endWatch();
    for (auto& [id, p] : probers) {
      p->stopped = true;
      p->timer.cancel();
    }
    pool.join();
  }
};

ContainerdRuntime::ContainerdRuntime(asio::any_io_executor executor, const std::string& endpoint, Options options)
    : impl_(std::make_shared<Impl>(std::move(executor), socketPathOf(endpoint), std::move(options))) {}

ContainerdRuntime::ContainerdRuntime(asio::any_io_executor executor, const std::string& endpoint)
    : ContainerdRuntime(std::move(executor), endpoint, Options{}) {}

ContainerdRuntime::~ContainerdRuntime() { impl_->shutdown(); }

std::string ContainerdRuntime::logPath(const std::string& id) const { return impl_->logPath(id); }

asio::awaitable<Result<EngineInfo>> ContainerdRuntime::version() {
  auto client = impl_->client;
  auto pending = impl_->offload([client]() -> Result<EngineInfo> {
    google::protobuf::Empty req;
    pb::version::VersionResponse resp;
    auto ctx = client->context();
    if (auto s = client->version->Version(ctx.get(), req, &resp); !s.ok()) return client->error(s, "containerd version");
    // containerd's gRPC API is "v1" for every 1.x release. runc places our containers with
    // cgroupfs paths; the hierarchy is whatever the host mounted.
    struct statfs fs{};
    const int cgroupVersion = statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC ? 2 : 1;
    return EngineInfo{"containerd", resp.version(), "v1", "cgroupfs", cgroupVersion};
  });
  co_return co_await std::move(pending);
}

asio::awaitable<Status> ContainerdRuntime::ensureImage(std::string image) {
  auto client = impl_->client;
  auto pending = impl_->offload([client, image, options = impl_->options]() -> Status {
    auto resolved = client->resolveImage(image);
    if (!resolved && resolved.error().code == Error::Code::NotFound) {
      if (!options.registryGet)
        return Error{Error::Code::NotFound, resolved.error().message + "; this runtime has no registry access (load the image first)"};
      auto ref = containerd::parseRegistryReference(containerd::normalizeReference(image));
      if (!ref) return ref.error();
      containerd::RegistryClient registry(options.registryGet, ref.value(), options.insecureRegistries);
      return client->pull(image, registry, options.pullDir);
    }
    if (!resolved) return resolved.error();
    if (client->unpacked(resolved.value())) return Done{};
    auto lease = client->createLease(std::chrono::minutes(30));
    if (!lease) return lease.error();
    return client->unpack(resolved.value(), lease->id());
  });
  co_return co_await std::move(pending);
}

asio::awaitable<Status> ContainerdRuntime::loadImage(std::string tarPath) {
  auto client = impl_->client;
  auto pending = impl_->offload([client, tarPath]() -> Status {
    auto names = client->importArchive(tarPath);
    if (!names) return names.error();
    return Done{};
  });
  co_return co_await std::move(pending);
}

asio::awaitable<Result<std::string>> ContainerdRuntime::create(ContainerSpec spec) {
  auto self = impl_;
  auto labels = spec.labels;
  auto pending = self->offload([self, spec = std::move(spec)] { return self->createOn(spec); });
  auto id = co_await std::move(pending);
  if (id) self->labelCache[id.value()] = labels;
  co_return id;
}

asio::awaitable<Status> ContainerdRuntime::start(std::string id) {
  auto self = impl_;
  auto pending = self->offload([self, id] { return self->startOn(id); });
  auto check = co_await std::move(pending);
  if (!check) co_return check.error();
  if (check.value()) {
    auto running = self->probers.find(id);
    if (running == self->probers.end() || running->second->stopped) {
      auto labels = self->labelCache.count(id) ? self->labelCache[id] : Labels{};
      self->startProber(id, labels, *check.value());
    }
  }
  co_return Done{};
}

asio::awaitable<Status> ContainerdRuntime::stop(std::string id, std::chrono::seconds timeout) {
  auto self = impl_;
  auto pending = self->offload([self, id, timeout] { return self->stopOn(id, timeout); });
  co_return co_await std::move(pending);
}

asio::awaitable<Status> ContainerdRuntime::kill(std::string id, int signal) {
  auto self = impl_;
  auto pending = self->offload([self, id, signal] { return self->killOn(id, signal); });
  co_return co_await std::move(pending);
}

asio::awaitable<Status> ContainerdRuntime::remove(std::string id) {
  auto self = impl_;
  self->stopProber(id, true);
  auto pending = self->offload([self, id] { return self->removeOn(id); });
  co_return co_await std::move(pending);
}

asio::awaitable<Result<ContainerInfo>> ContainerdRuntime::inspect(std::string id) {
  auto self = impl_;
  auto client = self->client;
  auto pending = self->offload([client, id] { return Impl::inspectOn(*client, id); });
  auto r = co_await std::move(pending);
  if (!r) co_return r.error();
  self->remember(r.value());
  co_return self->withHealth(r->info);
}

asio::awaitable<Result<VolumeInfo>> ContainerdRuntime::createVolume(VolumeSpec spec) {
  co_return Error{Error::Code::Unsupported, "volume " + spec.name + ": named volumes are not implemented on containerd yet"};
}

asio::awaitable<Result<VolumeInfo>> ContainerdRuntime::inspectVolume(std::string name) {
  co_return Error{Error::Code::NotFound, "volume " + name + ": named volumes are not implemented on containerd yet"};
}

asio::awaitable<Status> ContainerdRuntime::removeVolume(std::string) { co_return Done{}; }

asio::awaitable<Result<std::vector<VolumeInfo>>> ContainerdRuntime::listVolumes(LabelSelector) {
  co_return std::vector<VolumeInfo>{};
}

// Container output always goes to the per-container file log; no ECS log driver applies.
asio::awaitable<Result<std::vector<std::string>>> ContainerdRuntime::logDrivers() {
  co_return Error{Error::Code::Unsupported, "containerd has no log drivers; output goes to the container's log file"};
}

asio::awaitable<Result<std::vector<ContainerInfo>>> ContainerdRuntime::list(LabelSelector selector) {
  auto self = impl_;
  auto client = self->client;
  auto pending = self->offload([client, selector] { return Impl::listOn(*client, selector); });
  auto records = co_await std::move(pending);
  if (!records) co_return records.error();
  std::vector<ContainerInfo> out;
  for (const auto& r : records.value()) {
    self->remember(r);
    out.push_back(self->withHealth(r.info));
  }
  co_return out;
}

void ContainerdRuntime::watch(LabelSelector selector, EventHandlers handlers) {
  impl_->endWatch();
  impl_->startWatch(std::move(selector), std::move(handlers));
}

void ContainerdRuntime::stopWatching() { impl_->endWatch(); }

void ContainerdRuntime::close() { impl_->shutdown(); }

}  // namespace daemonlet::runtime
