// How many idle agents' long polls one test control server process holds, and how long
// one change takes to reach all of them. Each simulated agent registers, then keeps one
// long poll open, through the agent's own HttpWorker (libcurl multi).
//   build/tests/bench/control_poll_bench 100 500 1000 2000
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "agent/source/HttpWorker.h"
#include "support/Async.h"
#include "support/ControlServerProcess.h"
#include "support/TempDir.h"

using namespace daemonlet;
using namespace std::chrono_literals;

namespace {

long rssKiB(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string key; in >> key;) {
    if (key == "VmRSS:") {
      long kib = 0;
      in >> kib;
      return kib;
    }
  }
  return -1;
}

void measure(int agents) {
  test::TempDir dir;
  test::ControlServerProcess server(dir.path);
  const std::string etag = server.setDesired(R"({"generation": 1, "daemons": [], "tasks": []})");
  asio::io_context io;
  agent::HttpWorker worker(io.get_executor());
  int registered = 0, answered = 0, changed = 0, failed = 0;
  for (int i = 0; i < agents; ++i) {
    agent::HttpRequest r;
    r.method = "PUT";
    r.url = fmt::format("{}/v1/clusters/default/instances/bench-{}", server.url(), i);
    r.body = R"({"capacityProvider": "default", "attributes": {}, "agentVersion": "bench", "capacity": {"cpu": 2048, "memory": 4096}})";
    r.timeout = 60s;
    worker.submit(std::move(r), [&](agent::HttpResponse a) { a.status == 200 ? ++registered : ++failed; });
  }
  test::pumpUntil(io, [&] { return registered + failed == agents; }, 120s);
  const long idleRss = rssKiB(server.pid());
  for (int i = 0; i < agents; ++i) {
    agent::HttpRequest r;
    r.url = fmt::format("{}/v1/clusters/default/instances/bench-{}/desired?waitSeconds=120", server.url(), i);
    r.headers = {"If-None-Match: " + etag};
    r.timeout = 180s;
    worker.submit(std::move(r), [&](agent::HttpResponse a) {
      ++answered;
      if (a.status == 200) ++changed;
      else ++failed;
    });
  }
  const bool held = test::pumpUntil(io, [&] { return server.state()["waiting"].get<int>() >= agents || failed > 0; }, 120s);
  const int waiting = server.state()["waiting"].get<int>();
  const long heldRss = rssKiB(server.pid());
  const auto t0 = std::chrono::steady_clock::now();
  server.setDesired(R"({"generation": 2, "daemons": [], "tasks": []})");
  test::pumpUntil(io, [&] { return answered == agents; }, 120s);
  const double fanout = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{:>6} agents: {:>6} long polls held{}, server RSS {:.1f} MiB idle -> {:.1f} MiB holding them ({:.0f} KiB each); "
             "a change reached {}/{} in {:.2f} s; {} failed\n",
             agents, waiting, held ? "" : " (not all)", idleRss / 1024.0, heldRss / 1024.0,
             agents ? static_cast<double>(heldRss - idleRss) / agents : 0.0, changed, agents, fanout, failed);
}

}  // namespace

int main(int argc, char** argv) {
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;  // the server (a child) inherits it too
  if (::setrlimit(RLIMIT_NOFILE, &files) != 0) std::fprintf(stderr, "cannot raise the open-file limit; large runs may fail\n");
  std::printf("open-file limit: %llu\n", static_cast<unsigned long long>(files.rlim_cur));
  for (int i = 1; i < argc; ++i) measure(std::stoi(argv[i]));
  if (argc < 2) measure(1000);
  return 0;
}
