// The pure parts of the control endpoint client: retry timing, Retry-After, the token
// file, and the status report's shape (DESIGN 3.5).
#include <chrono>

#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"
#include "agent/source/ControlEndpointSource.h"
#include "agent/api/StatusDocuments.h"
#include "support/TempDir.h"

using namespace daemonlet;
using namespace std::chrono_literals;

TEST_CASE("control backoff: 250 ms doubling to 60 s, jittered over the upper half") {
  CHECK(agent::jitteredBackoff(1, 0.0) == 125ms);
  CHECK(agent::jitteredBackoff(1, 0.999) <= 250ms);
  CHECK(agent::jitteredBackoff(2, 0.0) == 250ms);
  CHECK(agent::jitteredBackoff(3, 1.0) == 1000ms);
  CHECK(agent::jitteredBackoff(9, 1.0) == 60000ms);   // 250 * 2^8 = 64 s, capped
  CHECK(agent::jitteredBackoff(500, 0.0) == 30000ms);  // no overflow after a long outage
  CHECK(agent::jitteredBackoff(500, 1.0) == 60000ms);
}

TEST_CASE("control Retry-After: delta seconds or an HTTP date") {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  CHECK(agent::parseRetryAfter("120", now) == 120s);
  CHECK(agent::parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now) == 30s);
  CHECK(agent::parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now) == 0s);  // already past
  CHECK_FALSE(agent::parseRetryAfter("", now));
  CHECK_FALSE(agent::parseRetryAfter("soon", now));
  CHECK_FALSE(agent::parseRetryAfter("99999999999999", now));
}

TEST_CASE("control token file: trimmed, re-read after a change, clear problems") {
  daemonlet::test::TempDir dir;
  dir.write("token", "abc123\n");
  agent::TokenFile token((dir.path / "token").string());
  std::string problem;
  CHECK(token.read(problem) == "abc123");
  dir.write("token", "rotated-456-longer\n");
  CHECK(token.read(problem) == "rotated-456-longer");
  dir.write("token", "\n");
  CHECK_FALSE(token.read(problem));
  CHECK(problem.find("it is empty") != std::string::npos);
  dir.write("token", "one\ntwo\n");
  CHECK_FALSE(token.read(problem));
  CHECK(problem.find("more than one line") != std::string::npos);
  agent::TokenFile missing((dir.path / "nope").string());
  CHECK_FALSE(missing.read(problem));
  CHECK(problem.find("No such file") != std::string::npos);
}

TEST_CASE("status report: what a control plane acts on, and stable while nothing changes") {
  daemonlet::test::World w;
  w.desired.daemons = {daemonlet::test::simple("metrics", 3, 64, true)};
  w.desired.tasks = {{"web-1", daemonlet::test::simple("web", 2, 4000)}};
  w.capacity = {2048, 2048};
  w.settle();
  const auto report = agent::statusReportDocument(w.plan(), 7);
  CHECK(report["generation"] == 7);
  CHECK(report["phase"] == "ACTIVE");
  CHECK(report["capacity"] == nlohmann::json({{"cpu", 2048}, {"memory", 2048}}));
  CHECK(report["daemonReserved"]["memory"] == 64);
  CHECK(report["available"]["memory"] == 2048 - 64);
  REQUIRE(report["daemons"].size() == 1);
  CHECK(report["daemons"][0] == nlohmann::json({{"family", "metrics"}, {"revision", 3}, {"status", "RUNNING"}, {"health", "HEALTHY"},
                                                {"restarts", 0}, {"lastError", nullptr}}));
  REQUIRE(report["tasks"].size() == 1);
  CHECK(report["tasks"][0]["id"] == "web-1");
  CHECK(report["tasks"][0]["status"] == "STOPPED");
  CHECK(report["tasks"][0]["stoppedReason"] == "RESOURCE:MEMORY");
  w.now += std::chrono::seconds(30);
  CHECK(agent::statusReportDocument(w.plan(), 7).dump() == report.dump());  // no heartbeat-breaking churn
}
