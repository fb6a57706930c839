#include "runtime/docker/DockerRuntime.h"
#include "runtime/JsonText.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "runtime/docker/DockerJson.h"
#include "runtime/docker/UnixHttpClient.h"

namespace daemonlet::runtime {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int kOurApiMinor = 41;
constexpr int kOldestApiMinor = 40;

int apiMinor(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2 || major != 1) return 0;
  return minor;
}

std::string socketPathOf(const std::string& endpoint) {
  constexpr std::string_view scheme = "unix://";
  return endpoint.rfind(scheme, 0) == 0 ? endpoint.substr(scheme.size()) : endpoint;
}

Error httpError(const HttpResponse& r, const std::string& what) {
  const std::string message = fmt::format("{}: {}", what, engineMessage(r.body));
  switch (r.status) {
    case 404: return {Error::Code::NotFound, message};
    case 409: return {Error::Code::Conflict, message};
    case 401:
    case 403: return {Error::Code::PermissionDenied, message};
    default: return {Error::Code::Engine, fmt::format("{} (HTTP {})", message, r.status)};
  }
}

}  // namespace

// The protocol: one negotiated API version, one connection pool.
class DockerRuntime::Api {
 public:
  Api(asio::any_io_executor executor, std::string socketPath, Options options)
      : http(std::move(executor), std::move(socketPath)), options(options) {}

  UnixHttpClient http;
  Options options;
  std::optional<std::string> prefix;  // "/v1.41" once negotiated
  EngineInfo engine;

  asio::awaitable<Result<EngineInfo>> negotiate() {
    auto ping = co_await http.request(http::verb::get, "/_ping", "", "", options.callDeadline);
    if (!ping) co_return ping.error();
    if (ping->status != 200) co_return httpError(ping.value(), "GET /_ping");
    const std::string engineApi = ping->header("api-version");
    const int minor = apiMinor(engineApi);
    if (minor < kOldestApiMinor) {
      co_return Error{Error::Code::Unsupported,
                      fmt::format("the Docker engine at {} speaks API {}; daemonlet needs 1.{} or newer (Docker 19.03+)",
                                  http.socketPath(), engineApi.empty() ? "(unknown)" : engineApi, kOldestApiMinor)};
    }
    const std::string use = fmt::format("1.{}", std::min(minor, kOurApiMinor));
    auto version = co_await http.request(http::verb::get, "/v" + use + "/version", "", "", options.callDeadline);
    if (!version) co_return version.error();
    if (version->status != 200) co_return httpError(version.value(), "GET /version");
    // Where task cgroups go depends on how the engine names them (DESIGN 3.3).
    auto info = co_await http.request(http::verb::get, "/v" + use + "/info", "", "", options.callDeadline);
    if (!info) co_return info.error();
    if (info->status != 200) co_return httpError(info.value(), "GET /info");
    engine = docker::parseEngineInfo(json::parse(version->body, nullptr, false), json::parse(info->body, nullptr, false), use);
    prefix = "/v" + use;
    co_return engine;
  }

  asio::awaitable<Result<HttpResponse>> call(http::verb method, std::string path, std::string body = {},
                                             std::string contentType = {}, std::optional<milliseconds> deadline = {}) {
    if (!prefix) {
      auto negotiated = co_await negotiate();
      if (!negotiated) co_return negotiated.error();
    }
    co_return co_await http.request(method, *prefix + path, std::move(body), std::move(contentType),
                                    deadline.value_or(options.callDeadline));
  }

  asio::awaitable<Result<ContainerInfo>> inspect(const std::string& id) {
    auto r = co_await call(http::verb::get, "/containers/" + docker::urlEncode(id) + "/json");
    if (!r) co_return r.error();
    if (r->status != 200) co_return httpError(r.value(), "inspect container " + id);
    auto j = json::parse(r->body, nullptr, false);
    co_return docker::parseInspect(j);
  }

  asio::awaitable<Result<std::vector<ContainerInfo>>> list(const LabelSelector& selector) {
    auto r = co_await call(http::verb::get, "/containers/json?all=1&filters=" + docker::filtersQuery(selector));
    if (!r) co_return r.error();
    if (r->status != 200) co_return httpError(r.value(), "list containers");
    auto j = json::parse(r->body, nullptr, false);
    if (!j.is_array()) co_return Error{Error::Code::Protocol, "list containers: answer is not a JSON array"};
    std::vector<ContainerInfo> out;
    for (const auto& id : docker::listedIds(j)) {
      // The list entry lacks exit code, health and times; inspect has them.
      auto info = co_await inspect(id);
      if (info) out.push_back(std::move(info.value()));
      else if (info.error().code != Error::Code::NotFound) co_return info.error();  // removed meanwhile: skip
    }
    co_return out;
  }
};

struct DockerRuntime::Watch {
  bool stopped = false;
  std::shared_ptr<Api> api;
  asio::steady_timer backoff;
  Watch(std::shared_ptr<Api> a, asio::any_io_executor ex) : api(std::move(a)), backoff(std::move(ex)) {}
};

DockerRuntime::DockerRuntime(asio::any_io_executor executor, const std::string& endpoint, Options options)
    : api_(std::make_shared<Api>(executor, socketPathOf(endpoint), options)), executor_(executor), options_(options) {}

DockerRuntime::DockerRuntime(asio::any_io_executor executor, const std::string& endpoint)
    : DockerRuntime(std::move(executor), endpoint, Options{}) {}

DockerRuntime::~DockerRuntime() { stopWatching(); }

asio::awaitable<Result<EngineInfo>> DockerRuntime::version() { co_return co_await api_->negotiate(); }

asio::awaitable<Status> DockerRuntime::ensureImage(std::string image) {
  auto local = co_await api_->call(http::verb::get, "/images/" + image + "/json");
  if (!local) co_return local.error();
  if (local->status == 200) co_return Done{};
  if (local->status != 404) co_return httpError(local.value(), "inspect image " + image);

  std::string repository = image, tag = "latest";
  const auto slash = image.rfind('/');
  if (const auto at = image.find('@'); at != std::string::npos) {
    repository = image.substr(0, at);
    tag = image.substr(at + 1);
  } else if (const auto colon = image.rfind(':'); colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    repository = image.substr(0, colon);
    tag = image.substr(colon + 1);
  }
  auto pull = co_await api_->call(http::verb::post,
                                  fmt::format("/images/create?fromImage={}&tag={}", docker::urlEncode(repository), docker::urlEncode(tag)),
                                  "", "", options_.pullDeadline);
  if (!pull) co_return pull.error();
  std::optional<std::string> failure;
  if (pull->status != 200) failure = engineMessage(pull->body);
  else failure = docker::streamedError(pull->body);
  if (failure) {
    co_return Error{Error::Code::NotFound,
                    fmt::format("image {} is not present locally and no registry answered the pull: {}", image, *failure)};
  }
  co_return Done{};
}

asio::awaitable<Status> DockerRuntime::loadImage(std::string tarPath) {
  std::ifstream in(tarPath, std::ios::binary);
  if (!in) co_return Error{Error::Code::NotFound, fmt::format("load image: cannot read {}", tarPath)};
  std::ostringstream tar;
  tar << in.rdbuf();
  auto r = co_await api_->call(http::verb::post, "/images/load?quiet=1", tar.str(), "application/x-tar", options_.pullDeadline);
  if (!r) co_return r.error();
  if (r->status != 200) co_return httpError(r.value(), "load image " + tarPath);
  if (auto failure = docker::streamedError(r->body)) co_return Error{Error::Code::Engine, fmt::format("load image {}: {}", tarPath, *failure)};
  co_return Done{};
}

asio::awaitable<Status> DockerRuntime::ensureNetwork(NetworkSpec spec) {
  const std::string what = fmt::format("network {}", spec.name);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto found = co_await api_->call(http::verb::get, "/networks/" + docker::urlEncode(spec.name));
    if (!found) co_return found.error();
    if (found->status == 200) {
      auto j = json::parse(found->body, nullptr, false);
      std::string subnet;
      if (j.is_object() && j.contains("IPAM") && j["IPAM"].is_object() && j["IPAM"].contains("Config") && j["IPAM"]["Config"].is_array()) {
        for (const auto& c : j["IPAM"]["Config"]) {
          if (c.is_object() && c.contains("Subnet") && c["Subnet"].is_string()) subnet = c["Subnet"].get<std::string>();
        }
      }
      if (subnet != spec.subnet)
        co_return Error{Error::Code::Conflict, fmt::format("{} exists with subnet {}, not {}: remove it (docker network rm {}) or change the "
                                                           "configured subnet", what, subnet.empty() ? "(none)" : subnet, spec.subnet, spec.name)};
      co_return Done{};
    }
    if (found->status != 404) co_return httpError(found.value(), "inspect " + what);
    json body = {{"Name", spec.name},
                 {"Driver", "bridge"},
                 {"CheckDuplicate", true},
                 {"Labels", spec.labels},
                 {"IPAM", {{"Driver", "default"}, {"Config", json::array({{{"Subnet", spec.subnet}}})}}},
                 {"Options", {{"com.docker.network.bridge.name", spec.name}}}};
    auto created = co_await api_->call(http::verb::post, "/networks/create", jsonText(body), "application/json");
    if (!created) co_return created.error();
    if (created->status == 201) co_return Done{};
    if (created->status != 409) co_return httpError(created.value(), "create " + what);
    // 409: created meanwhile by another agent; check it again.
  }
  co_return Error{Error::Code::Conflict, what + ": created and removed concurrently"};
}

asio::awaitable<Result<std::string>> DockerRuntime::create(ContainerSpec spec) {
  const std::string what = fmt::format("create container {}", spec.name);
  auto r = co_await api_->call(http::verb::post, "/containers/create?name=" + docker::urlEncode(spec.name),
                               jsonText(docker::createBody(spec)));
  if (!r) co_return r.error();
  if (r->status == 404) co_return Error{Error::Code::NotFound, fmt::format("{}: image {} is not present: {}", what, spec.image, engineMessage(r->body))};
  if (r->status != 201) co_return httpError(r.value(), what);
  auto id = docker::createdId(json::parse(r->body, nullptr, false));
  if (!id) co_return Error{Error::Code::Protocol, what + ": answer has no Id"};
  co_return *id;
}

asio::awaitable<Status> DockerRuntime::start(std::string id) {
  auto r = co_await api_->call(http::verb::post, "/containers/" + docker::urlEncode(id) + "/start");
  if (!r) co_return r.error();
  if (r->status == 204 || r->status == 304) co_return Done{};  // 304: already running
  // A published host port that something else holds: the engine's own words, as a 500.
  const std::string message = engineMessage(r->body);
  if (message.find("port is already allocated") != std::string::npos || message.find("address already in use") != std::string::npos)
    co_return Error{Error::Code::PortInUse, fmt::format("start container {}: {}", id, message)};
  co_return httpError(r.value(), "start container " + id);
}

asio::awaitable<Status> DockerRuntime::stop(std::string id, std::chrono::seconds timeout) {
  // The engine answers only after the container is gone, up to `timeout` later.
  auto r = co_await api_->call(http::verb::post, fmt::format("/containers/{}/stop?t={}", docker::urlEncode(id), timeout.count()),
                               "", "", options_.callDeadline + timeout);
  if (!r) co_return r.error();
  if (r->status == 204 || r->status == 304) co_return Done{};  // 304: already stopped
  co_return httpError(r.value(), "stop container " + id);
}

asio::awaitable<Status> DockerRuntime::kill(std::string id, int signal) {
  auto r = co_await api_->call(http::verb::post, fmt::format("/containers/{}/kill?signal={}", docker::urlEncode(id), signal));
  if (!r) co_return r.error();
  if (r->status == 204) co_return Done{};
  co_return httpError(r.value(), "kill container " + id);
}

asio::awaitable<Status> DockerRuntime::remove(std::string id) {
  auto r = co_await api_->call(http::verb::delete_, fmt::format("/containers/{}?force=1&v=1", docker::urlEncode(id)));
  if (!r) co_return r.error();
  if (r->status == 204 || r->status == 404) co_return Done{};
  co_return httpError(r.value(), "remove container " + id);
}

asio::awaitable<Result<ContainerInfo>> DockerRuntime::inspect(std::string id) { co_return co_await api_->inspect(id); }

asio::awaitable<Result<std::vector<ContainerInfo>>> DockerRuntime::list(LabelSelector selector) {
  co_return co_await api_->list(selector);
}

asio::awaitable<Result<VolumeInfo>> DockerRuntime::createVolume(VolumeSpec spec) {
  auto r = co_await api_->call(http::verb::post, "/volumes/create", jsonText(docker::volumeCreateBody(spec)), "application/json");
  if (!r) co_return r.error();
  // 201 either way: the engine returns an existing volume of the same name and driver.
  if (r->status != 201 && r->status != 200) co_return httpError(r.value(), "create volume " + spec.name);
  co_return docker::parseVolume(json::parse(r->body, nullptr, false));
}

asio::awaitable<Result<VolumeInfo>> DockerRuntime::inspectVolume(std::string name) {
  auto r = co_await api_->call(http::verb::get, "/volumes/" + docker::urlEncode(name));
  if (!r) co_return r.error();
  if (r->status != 200) co_return httpError(r.value(), "inspect volume " + name);
  co_return docker::parseVolume(json::parse(r->body, nullptr, false));
}

asio::awaitable<Status> DockerRuntime::removeVolume(std::string name) {
  auto r = co_await api_->call(http::verb::delete_, "/volumes/" + docker::urlEncode(name));
  if (!r) co_return r.error();
  if (r->status == 204 || r->status == 404) co_return Done{};
  co_return httpError(r.value(), "remove volume " + name);  // 409: in use
}

asio::awaitable<Result<std::vector<VolumeInfo>>> DockerRuntime::listVolumes(LabelSelector selector) {
  auto r = co_await api_->call(http::verb::get, "/volumes?filters=" + docker::filtersQuery(selector));
  if (!r) co_return r.error();
  if (r->status != 200) co_return httpError(r.value(), "list volumes");
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("Volumes")) co_return Error{Error::Code::Protocol, "list volumes: answer has no Volumes"};
  std::vector<VolumeInfo> out;
  if (!j["Volumes"].is_array()) co_return out;  // null when there are none
  for (const auto& entry : j["Volumes"]) {
    auto v = docker::parseVolume(entry);
    if (!v) co_return v.error();
    out.push_back(std::move(v.value()));
  }
  co_return out;
}

asio::awaitable<Result<std::vector<std::string>>> DockerRuntime::logDrivers() {
  auto r = co_await api_->call(http::verb::get, "/info");
  if (!r) co_return r.error();
  if (r->status != 200) co_return httpError(r.value(), "GET /info");
  co_return docker::parseLogDrivers(json::parse(r->body, nullptr, false));
}

void DockerRuntime::stopWatching() {
  if (!watch_) return;
  watch_->stopped = true;
  watch_->backoff.cancel();
  watch_->api->http.cancelStreams();
  watch_.reset();
}

void DockerRuntime::watch(LabelSelector selector, EventHandlers handlers) {
  stopWatching();
  // The watch has its own connection pool so that cancelling it leaves calls alone.
  auto api = std::make_shared<Api>(executor_, api_->http.socketPath(), options_);
  watch_ = std::make_shared<Watch>(api, executor_);
  auto executor = executor_;
  asio::co_spawn(executor, [w = watch_, selector, handlers, executor]() -> asio::awaitable<void> {
    milliseconds delay = w->api->options.reconnectInitial;
    while (!w->stopped) {
      bool opened = false;
      Status ended = Done{};
      // Not `prefix ? engine : co_await negotiate()`: GCC 12 destroys the temporary of a
      // co_await inside ?: twice.
      Result<EngineInfo> negotiated = w->api->engine;
      // A throw from a handler or a parser ends this connection, never the watch: the
      // agent would otherwise go blind to the engine for good.
      try {
      if (!w->api->prefix) negotiated = co_await w->api->negotiate();
      if (!negotiated) {
        ended = negotiated.error();
      } else {
        const std::string target = *w->api->prefix + "/events?filters=" +
                                   docker::filtersQuery(selector, {{"type", {"container"}}});
        auto onOpen = [&opened, w, selector, handlers, executor] {
          opened = true;
          // Subscribed first, then listed: nothing that happens in between is lost.
          asio::co_spawn(executor, [w, selector, handlers]() -> asio::awaitable<void> {
            auto snapshot = co_await w->api->list(selector);
            if (w->stopped) co_return;
            if (snapshot) { if (handlers.onResync) handlers.onResync(snapshot.value()); }
            else if (handlers.onDisconnect) handlers.onDisconnect(snapshot.error());
          }, [w, handlers](std::exception_ptr e) {
            if (!e || w->stopped || !handlers.onDisconnect) return;
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& ex) {
              handlers.onDisconnect(Error{Error::Code::Protocol, std::string("resync after reconnect: ") + ex.what()});
            } catch (...) {
              handlers.onDisconnect(Error{Error::Code::Protocol, "resync after reconnect failed"});
            }
          });
        };
        auto onLine = [&w, &handlers](std::string_view line) {
          if (w->stopped) return;
          if (auto event = docker::parseEvent(line); event && handlers.onEvent) handlers.onEvent(*event);
        };
        ended = co_await w->api->http.streamLines(http::verb::get, target, w->api->options.callDeadline, onOpen, onLine);
      }
      } catch (const std::exception& e) {
        ended = Error{Error::Code::Protocol, std::string("event stream: ") + e.what()};
      }
      if (w->stopped) break;
      if (handlers.onDisconnect) handlers.onDisconnect(ended.ok() ? Error{Error::Code::Unavailable, "event stream ended"} : ended.error());
      w->api->prefix.reset();  // the engine may come back as another version
      if (opened) delay = w->api->options.reconnectInitial;
      w->backoff.expires_after(delay);
      boost::system::error_code ec;
      co_await w->backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      delay = std::min(delay * 2, w->api->options.reconnectMax);
    }
  }, asio::detached);
}

const char* toString(Error::Code code) {
  switch (code) {
    case Error::Code::Unavailable: return "unavailable";
    case Error::Code::PermissionDenied: return "permission denied";
    case Error::Code::NotFound: return "not found";
    case Error::Code::Conflict: return "conflict";
    case Error::Code::Engine: return "engine error";
    case Error::Code::Timeout: return "timeout";
    case Error::Code::Protocol: return "protocol error";
    case Error::Code::Cancelled: return "cancelled";
    case Error::Code::Unsupported: return "unsupported";
    case Error::Code::PortInUse: return "port in use";
  }
  return "?";
}

}  // namespace daemonlet::runtime
