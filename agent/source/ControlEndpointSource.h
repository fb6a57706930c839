#pragma once
// The control endpoint source (DESIGN 3.5; docs/control-protocol.md): registers the
// instance, long-polls its desired state, and reports status. It never stops the agent:
// every failure is logged once per attempt and retried with jittered exponential
// backoff while the last good desired state keeps running (P6, P7).
//
// Two independent channels share one HttpWorker: "control" (register, then long poll)
// and "report" (status PUTs, coalesced to one a second, plus a heartbeat).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "agent/source/DesiredStateSource.h"
#include "agent/source/HttpWorker.h"
#include "agent/Logger.h"
#include "agent/source/TokenFile.h"
#include "config/AgentConfig.h"
#include "config/Resources.h"

namespace daemonlet::agent {

// 250 ms doubling to 60 s; `unitRandom` in [0, 1) spreads the delay over its upper half
// so that a fleet does not retry in step.
std::chrono::milliseconds jitteredBackoff(int failures, double unitRandom);
// Retry-After as seconds or an HTTP date; nullopt when absent or unreadable.
std::optional<std::chrono::seconds> parseRetryAfter(const std::string& value, std::chrono::system_clock::time_point now);

class ControlEndpointSource final : public DesiredStateSource {
 public:
  struct Settings {
    std::string baseUrl;
    std::string cluster;
    std::string instanceId;
    std::string tokenFile;
    TlsFiles tls;
    std::chrono::seconds longPoll{55};
    std::chrono::seconds requestGrace{15};  // a long poll times out after longPoll + this
    std::chrono::seconds heartbeat{60};
    std::chrono::milliseconds reportInterval{1000};  // at most one report per interval
    std::chrono::milliseconds minPollInterval{1000};  // a server that never waits cannot make us spin
  };
  struct Registration {
    std::string capacityProvider;
    std::map<std::string, std::string> attributes;
    std::string agentVersion;
    config::Resources capacity;  // total minus instance.reserved
  };

  static Settings settingsFrom(const config::AgentConfig& config);

  // Where requests go: by default an HttpWorker; a test or a fuzzer may answer them itself
  // (`done` must run on the executor, later, as the worker's completions do).
  using Transport = std::function<void(HttpRequest request, std::function<void(HttpResponse)> done)>;

  ControlEndpointSource(asio::any_io_executor executor, Settings settings, Registration registration, Logger& log);
  ControlEndpointSource(asio::any_io_executor executor, Settings settings, Registration registration, Logger& log,
                        Transport transport);
  ~ControlEndpointSource() override;

  void start(Handler onChange, std::optional<VersionedDesiredState> lastGood) override;
  void publish(ReportRenderer render) override;
  std::int64_t errors() const override { return errors_; }

 private:
  struct Channel {
    const char* name;
    asio::steady_timer timer;
    int failures = 0;
    bool backingOff = false;  // a retry is scheduled on `timer`
  };

  void registerInstance();
  void pollDesired();
  void pollAgain();
  void onDesired(const HttpResponse& r, const std::string& url);
  void scheduleReport();
  void sendReport();
  void onReport(const HttpResponse& r);

  // Adds headers and auth; false (the failure handled, `retry` scheduled) when the token
  // cannot be read.
  bool prepare(HttpRequest& request, Channel& channel, std::function<void()> retry);
  void submit(HttpRequest request, std::function<void(const HttpResponse&)> done);
  void failed(Channel& channel, const std::string& what, const HttpResponse& r, std::function<void()> retry);
  void failedWithMessage(Channel& channel, const std::string& message, std::optional<std::chrono::milliseconds> delay,
                         std::function<void()> retry);
  void succeeded(Channel& channel);
  std::string instanceUrl() const;

  asio::any_io_executor executor_;
  Settings settings_;
  Registration registration_;
  Logger& log_;
  TokenFile token_;
  std::mt19937 random_;
  Handler onChange_;
  Channel control_;
  Channel report_;
  asio::steady_timer heartbeat_;

  bool registered_ = false;
  bool runningPersisted_ = false;  // nothing fetched yet this run
  std::string etag_;          // of the state we run
  std::string rejectedEtag_;  // of a response we refused: wait for the next change
  std::int64_t generation_ = 0;
  std::chrono::steady_clock::time_point lastPollStart_{};

  ReportRenderer render_;         // the newest report, rendered when it is sent
  std::string acknowledgedBody_;  // the last report the server answered 2xx
  bool heartbeatDue_ = false;     // sent even when it says nothing new
  bool reportPending_ = false;
  bool reportInFlight_ = false;
  bool reportTimerArmed_ = false;
  std::chrono::steady_clock::time_point lastReportSent_{};

  std::optional<std::chrono::steady_clock::time_point> unreachableSince_;
  int failedSinceReachable_ = 0;
  std::int64_t errors_ = 0;

  std::shared_ptr<char> alive_ = std::make_shared<char>();  // completions check it
  std::unique_ptr<HttpWorker> worker_;  // null with a given Transport
  Transport transport_;                 // last: destroyed (and the worker joined) first
};

}  // namespace daemonlet::agent
