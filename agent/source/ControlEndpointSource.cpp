#include "agent/source/ControlEndpointSource.h"
#include "runtime/JsonText.h"

#include <strings.h>

#include "agent/source/Curl.h"

#include <algorithm>

namespace daemonlet::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

std::string percentEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

// One line, short: what the endpoint said, for the log.
std::string excerpt(const std::string& body) {
  std::string out = body.substr(0, 200);
  std::replace_if(out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  if (body.size() > 200) out += "...";
  return out.empty() ? "(empty body)" : out;
}

std::string transportProblem(const HttpResponse& r) {
  switch (r.failure) {
    case HttpResponse::Failure::Connect: return "cannot connect: " + r.error;
    case HttpResponse::Failure::Resolve: return "DNS lookup failed: " + r.error;
    case HttpResponse::Failure::Timeout: return "timed out: " + r.error;
    case HttpResponse::Failure::Tls: return "TLS failed (check source.caFile and the client certificate): " + r.error;
    case HttpResponse::Failure::TooLarge: return r.error;
    case HttpResponse::Failure::Other:
    case HttpResponse::Failure::None: break;
  }
  return r.error;
}

bool isJson(const HttpResponse& r) {
  constexpr std::string_view json = "application/json";  // parameters such as charset may follow
  return ::strncasecmp(r.header("content-type").c_str(), json.data(), json.size()) == 0;
}

bool answered2xx(const HttpResponse& r) { return r.failure == HttpResponse::Failure::None && r.status >= 200 && r.status < 300; }

std::string duration(milliseconds d) {
  return d < seconds(1) ? fmt::format("{} ms", d.count()) : fmt::format("{:.1f} s", static_cast<double>(d.count()) / 1000.0);
}

}  // namespace

milliseconds jitteredBackoff(int failures, double unitRandom) {
  const milliseconds first{250}, cap{60000};
  milliseconds base = first;
  for (int i = 1; i < failures && base < cap; ++i) base *= 2;
  base = std::min(base, cap);
  return base / 2 + milliseconds(static_cast<std::int64_t>(static_cast<double>(base.count()) / 2.0 * std::clamp(unitRandom, 0.0, 1.0)));
}

std::optional<seconds> parseRetryAfter(const std::string& value, std::chrono::system_clock::time_point now) {
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (value.size() > 9) return std::nullopt;
    return seconds(std::stoll(value));
  }
  const time_t at = curl().getdate(value.c_str(), nullptr);
  if (at < 0) return std::nullopt;
  const auto wait = std::chrono::system_clock::from_time_t(at) - now;
  return std::max(seconds(0), std::chrono::duration_cast<seconds>(wait));
}

ControlEndpointSource::Settings ControlEndpointSource::settingsFrom(const config::AgentConfig& c) {
  Settings s;
  s.baseUrl = c.source.url;
  while (!s.baseUrl.empty() && s.baseUrl.back() == '/') s.baseUrl.pop_back();
  s.cluster = c.instance.cluster;
  s.instanceId = c.instance.id;
  s.tokenFile = c.source.tokenFile;
  s.tls = {c.source.caFile, c.source.clientCertFile, c.source.clientKeyFile};
  s.longPoll = seconds(c.source.longPollSeconds);
  return s;
}

ControlEndpointSource::ControlEndpointSource(asio::any_io_executor executor, Settings settings, Registration registration, Logger& log)
    : ControlEndpointSource(executor, std::move(settings), std::move(registration), log, Transport{}) {
  worker_ = std::make_unique<HttpWorker>(executor);
  transport_ = [worker = worker_.get()](HttpRequest request, std::function<void(HttpResponse)> done) {
    worker->submit(std::move(request), std::move(done));
  };
}

ControlEndpointSource::ControlEndpointSource(asio::any_io_executor executor, Settings settings, Registration registration, Logger& log,
                                             Transport transport)
    : executor_(executor),
      settings_(std::move(settings)),
      registration_(std::move(registration)),
      log_(log),
      token_(settings_.tokenFile),
      random_(std::random_device{}()),
      control_{"control", asio::steady_timer(executor)},
      report_{"report", asio::steady_timer(executor)},
      heartbeat_(executor),
      transport_(std::move(transport)) {}

ControlEndpointSource::~ControlEndpointSource() = default;

std::string ControlEndpointSource::instanceUrl() const {
  return fmt::format("{}/v1/clusters/{}/instances/{}", settings_.baseUrl, percentEncode(settings_.cluster), percentEncode(settings_.instanceId));
}

void ControlEndpointSource::start(Handler onChange, std::optional<VersionedDesiredState> lastGood) {
  onChange_ = std::move(onChange);
  if (settings_.baseUrl.rfind("http://", 0) == 0 && token_.configured()) {
    log_.warn("control endpoint {} is plain http: the bearer token crosses the network unencrypted; use https", settings_.baseUrl);
  }
  if (lastGood) {
    etag_ = lastGood->etag;
    runningPersisted_ = true;
    generation_ = lastGood->state.generation;
    log_.info("control endpoint: running the persisted desired state (generation {}, {} daemon(s), {} task(s)) until {} answers",
              generation_, lastGood->state.daemons.size(), lastGood->state.tasks.size(), settings_.baseUrl);
    asio::post(executor_, [this, weak = std::weak_ptr<char>(alive_), state = std::make_shared<const VersionedDesiredState>(std::move(*lastGood))] {
      if (weak.lock()) onChange_(state);
    });
  } else {
    log_.info("control endpoint {}: no persisted desired state; containers already running are left alone until it answers",
              settings_.baseUrl);
  }
  registerInstance();
}

bool ControlEndpointSource::prepare(HttpRequest& request, Channel& channel, std::function<void()> retry) {
  request.tls = settings_.tls;
  request.headers.push_back("Accept: application/json");
  request.headers.push_back("User-Agent: daemonlet/" + registration_.agentVersion);
  if (!request.body.empty()) request.headers.push_back("Content-Type: application/json");
  if (!token_.configured()) return true;
  std::string problem;
  auto token = token_.read(problem);
  if (!token) {
    failedWithMessage(channel, problem + "; no request sent", std::nullopt, std::move(retry));
    return false;
  }
  request.headers.push_back("Authorization: Bearer " + *token);
  return true;
}

void ControlEndpointSource::submit(HttpRequest request, std::function<void(const HttpResponse&)> done) {
  transport_(std::move(request), [weak = std::weak_ptr<char>(alive_), done = std::move(done)](HttpResponse r) {
    if (weak.lock()) done(r);
  });
}

// ---- registration and long poll ----------------------------------------------------------

void ControlEndpointSource::registerInstance() {
  HttpRequest request;
  request.method = "PUT";
  request.url = instanceUrl();
  request.timeout = settings_.requestGrace;
  nlohmann::json body = {{"capacityProvider", registration_.capacityProvider},
                         {"attributes", registration_.attributes},
                         {"agentVersion", registration_.agentVersion},
                         {"capacity", {{"cpu", registration_.capacity.cpu}, {"memory", registration_.capacity.memory}}}};
  request.body = jsonText(body);
  if (!prepare(request, control_, [this] { registerInstance(); })) return;
  submit(std::move(request), [this](const HttpResponse& r) {
    if (answered2xx(r)) {
      succeeded(control_);
      registered_ = true;
      log_.info("control endpoint: registered {} in cluster {} (offering {} CPU / {} MiB)", settings_.instanceId, settings_.cluster,
                registration_.capacity.cpu, registration_.capacity.memory);
      pollDesired();
      reportPending_ = true;  // the endpoint hears where we are at once
      scheduleReport();
      return;
    }
    failed(control_, "PUT " + instanceUrl() + " (register)", r, [this] { registerInstance(); });
  });
}

// After an answer, the next poll goes out at once, but never sooner than minPollInterval
// after the previous one: a server that answers without waiting cannot make us spin.
void ControlEndpointSource::pollAgain() {
  const auto next = lastPollStart_ + settings_.minPollInterval;
  if (steady_clock::now() >= next) return pollDesired();
  control_.timer.expires_at(next);
  control_.timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) pollDesired();
  });
}

void ControlEndpointSource::pollDesired() {
  lastPollStart_ = steady_clock::now();
  HttpRequest request;
  request.url = fmt::format("{}/desired?waitSeconds={}", instanceUrl(), settings_.longPoll.count());
  request.timeout = settings_.longPoll + settings_.requestGrace;
  const std::string& since = rejectedEtag_.empty() ? etag_ : rejectedEtag_;
  if (!since.empty()) request.headers.push_back("If-None-Match: " + since);
  if (!prepare(request, control_, [this] { pollDesired(); })) return;
  std::string url = request.url;
  submit(std::move(request), [this, url](const HttpResponse& r) { onDesired(r, url); });
}

void ControlEndpointSource::onDesired(const HttpResponse& r, const std::string& url) {
  const std::string what = "GET " + url;
  if (r.failure != HttpResponse::Failure::None || (r.status != 200 && r.status != 304)) {
    if (r.status == 404) registered_ = false;
    failed(control_, what, r, [this] { registered_ ? pollDesired() : registerInstance(); });
    return;
  }
  if (r.status == 304) {
    succeeded(control_);
    pollAgain();
    return;
  }
  const std::string etag = r.header("etag");
  std::string problem;
  if (!isJson(r)) {
    problem = fmt::format("Content-Type is '{}', not application/json", r.header("content-type"));
  } else {
    auto parsed = config::parseDesiredState(r.body, "control endpoint response");
    if (parsed.ok()) {
      for (const auto& d : parsed.diagnostics) log_.warn("{}", d.format());
      succeeded(control_);
      rejectedEtag_.clear();
      runningPersisted_ = false;
      etag_ = etag;
      generation_ = parsed.value->generation;
      log_.info("control endpoint: desired state generation {} ({} daemon(s), {} task(s), {}, etag {})", generation_,
                parsed.value->daemons.size(), parsed.value->tasks.size(), config::toString(parsed.value->instanceStatus),
                etag.empty() ? "none" : etag);
      onChange_(std::make_shared<const VersionedDesiredState>(VersionedDesiredState{std::move(*parsed.value), etag}));
      pollAgain();
      return;
    }
    for (const auto& d : parsed.diagnostics) {
      if (d.severity == config::Severity::Error) log_.error("{}", d.format());
    }
    problem = fmt::format("{} error(s) in the desired state", std::count_if(parsed.diagnostics.begin(), parsed.diagnostics.end(), [](const config::Diagnostic& d) {
                            return d.severity == config::Severity::Error;
                          }));
  }
  // Ask for the next change rather than this document again; without an ETag, back off.
  rejectedEtag_ = etag;
  const std::string keeping = generation_ > 0 || !etag_.empty() ? fmt::format("still running generation {}", generation_)
                                                                  : std::string("no desired state yet; running containers are left alone");
  failedWithMessage(control_, fmt::format("{}: response rejected as a whole ({}); {}", what, problem, keeping),
                    std::nullopt, [this] { pollDesired(); });
}

// ---- status reports ----------------------------------------------------------------------

void ControlEndpointSource::publish(ReportRenderer render) {
  render_ = std::move(render);
  reportPending_ = true;
  scheduleReport();
}

// At most one report per interval, one in flight, and the newest body wins.
void ControlEndpointSource::scheduleReport() {
  // While a failed report backs off, newer reports wait for the retry rather than cut the
  // backoff short.
  if (!registered_ || !reportPending_ || reportInFlight_ || reportTimerArmed_ || report_.backingOff || !render_) return;
  reportTimerArmed_ = true;
  report_.timer.expires_at(std::max(steady_clock::now(), lastReportSent_ + settings_.reportInterval));
  report_.timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    reportTimerArmed_ = false;
    sendReport();
  });
}

void ControlEndpointSource::sendReport() {
  if (!registered_) return;  // sent once registration succeeds
  HttpRequest request;
  request.method = "PUT";
  request.url = instanceUrl() + "/status";
  request.timeout = settings_.requestGrace;
  request.body = jsonText(render_());
  // What the server already has is not sent again, but for the heartbeat.
  if (request.body == acknowledgedBody_ && !heartbeatDue_) {
    reportPending_ = false;
    return;
  }
  if (!prepare(request, report_, [this] { scheduleReport(); })) return;
  reportPending_ = false;
  heartbeatDue_ = false;
  reportInFlight_ = true;
  lastReportSent_ = steady_clock::now();
  std::string sent = request.body;
  submit(std::move(request), [this, body = std::move(sent)](const HttpResponse& r) {
    reportInFlight_ = false;
    if (answered2xx(r)) {
      succeeded(report_);
      acknowledgedBody_ = body;
      heartbeat_.expires_after(settings_.heartbeat);
      heartbeat_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        reportPending_ = true;
        heartbeatDue_ = true;
        scheduleReport();
      });
      scheduleReport();  // a newer report may have come in meanwhile
      return;
    }
    reportPending_ = true;
    // Not registered any more: the control channel finds out on its next request and
    // registers again; the report goes out after that.
    if (r.status == 404) registered_ = false;
    failed(report_, "PUT " + instanceUrl() + "/status", r, [this] { scheduleReport(); });
  });
}

// ---- outcomes ----------------------------------------------------------------------------

void ControlEndpointSource::succeeded(Channel& channel) {
  channel.failures = 0;
  if (unreachableSince_) {
    const auto down = std::chrono::duration_cast<milliseconds>(steady_clock::now() - *unreachableSince_);
    log_.info("control endpoint: back after {} failed request(s) over {}", failedSinceReachable_, duration(down));
    unreachableSince_.reset();
    failedSinceReachable_ = 0;
  }
}

void ControlEndpointSource::failed(Channel& channel, const std::string& what, const HttpResponse& r, std::function<void()> retry) {
  std::optional<milliseconds> delay;
  std::string message;
  if (r.failure != HttpResponse::Failure::None) {
    message = fmt::format("{}: {}", what, transportProblem(r));
  } else if (r.status == 401 || r.status == 403) {
    // Loud and distinct: nothing will work until someone fixes the credentials.
    log_.error("control endpoint REFUSED CREDENTIALS: {} answered HTTP {}{}; fix {} (the token is never logged): {}", what, r.status,
               r.status == 401 ? " Unauthorized" : " Forbidden",
               token_.configured() ? "the token in source.tokenFile " + token_.path() : "the agent's credentials (no source.tokenFile is set)",
               excerpt(r.body));
    message = fmt::format("{}: HTTP {}", what, r.status);
  } else if (r.status == 404) {
    message = fmt::format("{}: HTTP 404, this instance is not registered; registering again", what);
  } else if (r.status == 429) {
    const auto after = parseRetryAfter(r.header("retry-after"), std::chrono::system_clock::now());
    if (after) delay = std::min<milliseconds>(*after, seconds(600));
    message = fmt::format("{}: HTTP 429 Too Many Requests (Retry-After: {})", what, r.header("retry-after").empty() ? "none" : r.header("retry-after"));
  } else {
    message = fmt::format("{}: HTTP {}: {}", what, r.status, excerpt(r.body));
  }
  failedWithMessage(channel, message, delay, std::move(retry));
}

void ControlEndpointSource::failedWithMessage(Channel& channel, const std::string& message, std::optional<milliseconds> delay,
                                              std::function<void()> retry) {
  ++errors_;
  ++failedSinceReachable_;
  channel.failures += 1;
  const milliseconds wait = delay.value_or(jitteredBackoff(channel.failures, std::uniform_real_distribution<double>(0.0, 1.0)(random_)));
  if (!unreachableSince_) {
    unreachableSince_ = steady_clock::now();
    if (runningPersisted_) {
      log_.warn("control endpoint: unreachable; running the desired state persisted in stateDir/state.json (generation {})", generation_);
    } else if (generation_ > 0 || !etag_.empty()) {
      log_.warn("control endpoint: failing; the last good desired state (generation {}) keeps running", generation_);
    } else {
      log_.warn("control endpoint: failing before any desired state arrived; running containers are left as they are");
    }
  }
  log_.warn("control endpoint: {} (attempt {} on the {} channel; retrying in {})", message, channel.failures, channel.name, duration(wait));
  channel.backingOff = true;
  channel.timer.expires_after(wait);
  channel.timer.async_wait([&channel, retry = std::move(retry)](const boost::system::error_code& ec) {
    if (ec) return;
    channel.backingOff = false;
    retry();
  });
}

}  // namespace daemonlet::agent
