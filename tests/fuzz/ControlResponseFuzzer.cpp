// The control endpoint's answers, as the source handles them: register, long poll and
// status report, each answered from the fuzz input (failure kind, status, headers, body),
// for as long as the source asks without waiting for a backoff timer. A crash, a hang or a
// desired state handed on from a rejected answer is a bug.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <sstream>
#include <string>

#include <fuzzer/FuzzedDataProvider.h>

#include "agent/source/ControlEndpointSource.h"

namespace {

using namespace daemonlet;
using namespace daemonlet::agent;

HttpResponse answerFrom(FuzzedDataProvider& in) {
  HttpResponse r;
  r.failure = static_cast<HttpResponse::Failure>(in.ConsumeIntegralInRange<int>(0, 6));
  if (r.failure != HttpResponse::Failure::None) {
    r.error = in.ConsumeRandomLengthString(64);
    return r;
  }
  static constexpr long kStatuses[] = {200, 200, 200, 201, 204, 304, 400, 401, 404, 409, 429, 500, 503};
  r.status = in.ConsumeBool() ? in.PickValueInArray(kStatuses) : in.ConsumeIntegralInRange<long>(0, 999);
  static constexpr const char* kTypes[] = {"application/json", "application/json; charset=utf-8", "text/plain", "", "APPLICATION/JSON"};
  r.headers["content-type"] = in.PickValueInArray(kTypes);
  if (in.ConsumeBool()) r.headers["etag"] = in.ConsumeRandomLengthString(40);
  if (in.ConsumeBool()) r.headers["retry-after"] = in.ConsumeRandomLengthString(40);
  r.body = in.ConsumeRandomLengthString(1 << 16);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  asio::io_context io;
  std::ostringstream logs;
  Logger log{logs};
  std::deque<std::function<void(HttpResponse)>> waiting;

  ControlEndpointSource::Settings settings;
  settings.baseUrl = "http://127.0.0.1:1";
  settings.cluster = "prod";
  settings.instanceId = "i-1";
  settings.minPollInterval = std::chrono::milliseconds(0);
  settings.reportInterval = std::chrono::milliseconds(0);
  ControlEndpointSource source(io.get_executor(), settings, {"cp", {{"zone", "a"}}, "0.1.0", {4096, 8192}}, log,
                               [&](HttpRequest, std::function<void(HttpResponse)> done) { waiting.push_back(std::move(done)); });
  int changes = 0;
  source.start([&](auto) { ++changes; }, std::nullopt);
  source.publish([] { return nlohmann::json{{"phase", "ACTIVE"}}; });
  for (int answers = 0; answers < 64 && in.remaining_bytes() > 0; ++answers) {
    io.poll();
    io.restart();
    if (waiting.empty()) break;  // only a timer is left: a backoff
    auto done = std::move(waiting.front());
    waiting.pop_front();
    const HttpResponse r = answerFrom(in);
    asio::post(io, [done = std::move(done), r] { done(r); });
  }
  io.poll();
  (void)changes;
  return 0;
}
