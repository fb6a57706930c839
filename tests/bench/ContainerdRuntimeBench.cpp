// Prints how much ContainerdRuntime costs next to containerd's own client, in one run:
//  1. create+start latency through ContainerdRuntime vs. `ctr run -d` (the same calls:
//     snapshot prepare, container create, task create, task start), interleaved;
//  2. exit-event latency: from the task's exit time to the event reaching the adapter's
//     watch.
// Usage: containerd_runtime_bench SOCKET [COUNT]  (run by containerd_bench.sh on a
// private containerd holding docker.io/daemonlet/busybox:local in namespace daemonlet)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "runtime/containerd/ContainerdRuntime.h"
#include "support/Async.h"

using namespace daemonlet;
using namespace daemonlet::runtime;
using Steady = std::chrono::steady_clock;

namespace {

constexpr const char* kImage = "daemonlet/busybox:local";

struct Stats {
  double median, p95, mean;
};

Stats stats(std::vector<double> v) {
  if (v.empty()) return {0, 0, 0};
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  return {v[v.size() / 2], v[std::min(v.size() - 1, static_cast<std::size_t>(v.size() * 0.95))], sum / static_cast<double>(v.size())};
}

double ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SOCKET [COUNT]\n", argv[0]);
    return 2;
  }
  const std::string socket = argv[1];
  const int count = argc > 2 ? std::atoi(argv[2]) : 20;
  asio::io_context io;
  ContainerdRuntime::Options options;
  options.logDir = fmt::format("/tmp/dl-ctrd-bench-logs-{}", getpid());
  ContainerdRuntime rt(io.get_executor(), "unix://" + socket, options);
  if (auto s = test::runAsync(io, rt.ensureImage(kImage)); !s.ok()) {
    std::fprintf(stderr, "image %s: %s\n", kImage, s.error().message.c_str());
    return 1;
  }
  const LabelSelector bench{{"io.daemonlet.bench", "1"}};
  std::vector<double> adapter, direct;
  std::vector<std::string> ctrNames;
  for (int i = -2; i < count; ++i) {  // two rounds of warm-up for both
    ContainerSpec spec;
    spec.name = fmt::format("dlbench-a-{}-{}", getpid(), i + 2);
    spec.image = kImage;
    spec.command = {"true"};
    spec.labels = bench;
    spec.networkMode = "none";
    auto t0 = Steady::now();
    auto id = test::runAsync(io, rt.create(spec));
    if (!id.ok()) return std::fprintf(stderr, "create: %s\n", id.error().message.c_str()), 1;
    if (auto s = test::runAsync(io, rt.start(id.value())); !s.ok()) return std::fprintf(stderr, "start: %s\n", s.error().message.c_str()), 1;
    auto t1 = Steady::now();
    ctrNames.push_back(fmt::format("dlbench-c-{}-{}", getpid(), i + 2));
    const std::string command = fmt::format("ctr --address {} -n daemonlet run -d --null-io --label io.daemonlet.bench=1 docker.io/{} {} true",
                                            socket, kImage, ctrNames.back());
    if (std::system(command.c_str()) != 0) return std::fprintf(stderr, "%s failed\n", command.c_str()), 1;
    auto t2 = Steady::now();
    if (i >= 0) {
      adapter.push_back(ms(t1 - t0));
      direct.push_back(ms(t2 - t1));
    }
  }

  std::vector<double> eventLatency;
  std::map<std::string, std::chrono::system_clock::time_point> received;
  rt.watch(bench, {[&](const RuntimeEvent& e) {
                     if (e.kind == RuntimeEvent::Kind::Exit) received[e.containerId] = std::chrono::system_clock::now();
                   }, nullptr, nullptr});
  test::pumpUntil(io, [] { return false; }, std::chrono::milliseconds(500));
  for (int i = 0; i < count; ++i) {
    ContainerSpec spec;
    spec.name = fmt::format("dlbench-e-{}-{}", getpid(), i);
    spec.image = kImage;
    spec.command = {"sh", "-c", "sleep 0.2"};
    spec.labels = bench;
    spec.networkMode = "none";
    auto id = test::runAsync(io, rt.create(spec));
    if (!id.ok() || !test::runAsync(io, rt.start(id.value())).ok()) return 1;
    test::pumpUntil(io, [&] { return received.count(id.value()) > 0; }, std::chrono::seconds(10));
    auto info = test::runAsync(io, rt.inspect(id.value()));
    if (received.count(id.value()) && info.ok() && info->finishedAt)
      eventLatency.push_back(std::chrono::duration<double, std::milli>(received[id.value()] - *info->finishedAt).count());
  }
  rt.stopWatching();

  if (auto left = test::runAsync(io, rt.list(bench)); left.ok())
    for (const auto& c : left.value()) test::runAsync(io, rt.remove(c.id));

  const Stats a = stats(adapter), d = stats(direct), e = stats(eventLatency);
  std::printf("create+start over %d containers (ms)        median    p95     mean\n", count);
  std::printf("  ContainerdRuntime (gRPC worker pool)   %7.2f %7.2f %7.2f\n", a.median, a.p95, a.mean);
  std::printf("  ctr run -d (containerd's own client)   %7.2f %7.2f %7.2f\n", d.median, d.p95, d.mean);
  std::printf("  ratio adapter / ctr (median)           %7.2f\n", a.median / d.median);
  std::printf("exit event latency over %zu exits (ms)     %7.2f %7.2f %7.2f\n", eventLatency.size(), e.median, e.p95, e.mean);
  std::printf("figure: containerd_create_start_ms adapter=%.1f ctr=%.1f ratio=%.2f exit_event_ms=%.1f\n", a.median, d.median,
              a.median / d.median, e.median);
  return 0;
}
