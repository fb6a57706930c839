#include "agent/api/ApiRouter.h"

#include <fmt/format.h>

#include "runtime/JsonText.h"

namespace daemonlet::agent {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;

ApiRouter::Response reply(const ApiRouter::Request& req, http::status status, std::string body,
                             const char* contentType = "application/json") {
  ApiRouter::Response res{status, req.version()};
  res.set(http::field::server, "daemonlet/" DAEMONLET_VERSION);
  res.set(http::field::content_type, contentType);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

ApiRouter::Response error(const ApiRouter::Request& req, http::status status, const std::string& message) {
  return reply(req, status, jsonText(json{{"error", message}}) + "\n");
}

}  // namespace

ApiRouter::Response ApiRouter::malformed(const std::string& why) {
  Request bad;
  bad.version(11);
  auto res = error(bad, http::status::bad_request, fmt::format("malformed request: {}", why));
  res.keep_alive(false);
  return res;
}

ApiRouter::Response ApiRouter::handle(const Request& req, Channel channel) {
  std::string path(req.target());
  if (channel == Channel::Tcp && req.find(http::field::origin) != req.end()) {
    // A browser: any web page could otherwise read this host's tasks or post a drain.
    return error(req, http::status::forbidden, "requests from web pages (with an Origin header) are refused");
  }
  const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  if (channel == Channel::Tcp && !get) {
    auto res = error(req, http::status::method_not_allowed,
                     "the TCP listener is read-only: drain and undrain go through the API socket (apiSocket; daemonlet drain)");
    res.set(http::field::allow, "GET");
    return res;
  }
  if (const auto q = path.find('?'); q != std::string::npos) path.resize(q);
  auto onlyGet = [&]() {
    auto res = error(req, http::status::method_not_allowed, fmt::format("{} takes GET", path));
    res.set(http::field::allow, "GET");
    return res;
  };

  if (path == "/healthz") {
    if (!get) return onlyGet();
    return backend_.loopAlive() ? reply(req, http::status::ok, "ok\n", "text/plain")
                                : reply(req, http::status::service_unavailable, "agent loop stalled\n", "text/plain");
  }
  if (path == "/readyz") {
    if (!get) return onlyGet();
    const bool open = backend_.plan().memory.gateOpenedAt.has_value();
    return open ? reply(req, http::status::ok, "slot gate open\n", "text/plain")
                : reply(req, http::status::service_unavailable, "slot gate closed: waiting for critical daemons\n", "text/plain");
  }
  if (path == "/metrics") {
    if (!get) return onlyGet();
    return reply(req, http::status::ok, metricsText(backend_.instance(), backend_.plan(), backend_.metrics()), "text/plain; version=0.0.4");
  }
  if (path == "/v1/metadata") {
    if (!get) return onlyGet();
    return reply(req, http::status::ok, jsonText(metadataDocument(backend_.instance(), backend_.plan())) + "\n");
  }
  if (path == "/v1/daemons") {
    if (!get) return onlyGet();
    return reply(req, http::status::ok, jsonText(daemonsDocument(backend_.plan())) + "\n");
  }
  if (path == "/v1/tasks") {
    if (!get) return onlyGet();
    return reply(req, http::status::ok, jsonText(tasksDocument(backend_.plan())) + "\n");
  }
  if (path.rfind("/v1/tasks/", 0) == 0) {
    if (!get) return onlyGet();
    const std::string id = path.substr(10);
    for (const auto& t : backend_.plan().tasks) {
      if (t.id == id) return reply(req, http::status::ok, jsonText(taskDocument(t)) + "\n");
    }
    return error(req, http::status::not_found, fmt::format("no task '{}' on this instance", id));
  }
  if (path == "/v1/drain") {
    const bool post = req.method() == http::verb::post;
    if (!post && req.method() != http::verb::delete_) {
      auto res = error(req, http::status::method_not_allowed, "/v1/drain takes POST (drain) or DELETE (undrain)");
      res.set(http::field::allow, "POST, DELETE");
      return res;
    }
    if (post) {
      log_.info("drain requested through the introspection API");
      backend_.requestDrain();
    } else {
      log_.info("undrain requested through the introspection API");
      if (!backend_.requestUndrain()) return error(req, http::status::conflict, "the instance is shutting down: undrain refused");
    }
    return reply(req, http::status::accepted, jsonText(json{{"phase", toString(backend_.plan().phase)}, {"draining", post}}) + "\n");
  }
  return error(req, http::status::not_found, fmt::format("no endpoint {}", path));
}

}  // namespace daemonlet::agent
