// Prints how much DockerRuntime adds on top of the Engine API itself:
//  1. create+start latency through DockerRuntime vs. the same two requests, pre-formatted,
//     sent by a minimal blocking client on a kept-alive socket (interleaved, 50 each);
//  2. exit-event latency: from the container's FinishedAt to the event reaching us.
// Usage: docker_runtime_bench [COUNT]   (needs dockerd and daemonlet/busybox:local)
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "runtime/docker/DockerRuntime.h"
#include "support/Async.h"

using namespace daemonlet;
using namespace daemonlet::runtime;
using Steady = std::chrono::steady_clock;

namespace {

constexpr const char* kSocket = "/var/run/docker.sock";
constexpr const char* kImage = "daemonlet/busybox:local";

// The least an HTTP client can do: write bytes, read one response on the same socket.
class RawClient {
 public:
  RawClient() {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", kSocket);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
  }
  ~RawClient() { ::close(fd_); }

  std::string call(const std::string& request) {
    for (std::size_t off = 0; off < request.size();) off += static_cast<std::size_t>(::write(fd_, request.data() + off, request.size() - off));
    std::string in;
    char buf[4096];
    for (;;) {
      const auto head = in.find("\r\n\r\n");
      if (head != std::string::npos) {
        const auto cl = in.find("Content-Length: ");
        if (cl != std::string::npos && cl < head) {
          const std::size_t length = std::stoul(in.substr(cl + 16));
          if (in.size() >= head + 4 + length) return in.substr(head + 4, length);
        } else if (in.find("Transfer-Encoding: chunked") < head) {
          if (in.find("\r\n0\r\n\r\n", head) != std::string::npos) return in.substr(head + 4);
        } else {
          return "";  // 204
        }
      }
      const auto n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("read");
      in.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

std::string createRequest(const std::string& name) {
  const std::string body = fmt::format(
      R"({{"Image":"{}","Cmd":["true"],"Labels":{{"io.daemonlet.bench":"1"}},"HostConfig":{{"NetworkMode":"none","RestartPolicy":{{"Name":"no"}}}}}})", kImage);
  return fmt::format("POST /v1.41/containers/create?name={} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                     name, body.size(), body);
}

std::string startRequest(const std::string& id) {
  return fmt::format("POST /v1.41/containers/{}/start HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n", id);
}

struct Stats {
  double median, p95, mean;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  return {v[v.size() / 2], v[std::min(v.size() - 1, static_cast<std::size_t>(v.size() * 0.95))], sum / static_cast<double>(v.size())};
}

double ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::atoi(argv[1]) : 50;
  asio::io_context io;
  DockerRuntime rt(io.get_executor(), std::string("unix://") + kSocket);
  if (!test::runAsync(io, rt.ensureImage(kImage)).ok()) {
    std::fprintf(stderr, "image %s missing: run packaging/dev-setup.sh setup\n", kImage);
    return 1;
  }
  RawClient raw;
  const LabelSelector bench{{"io.daemonlet.bench", "1"}};
  std::vector<double> adapter, direct;
  // Warm both paths (connection set-up, API negotiation) before measuring.
  for (int i = -2; i < count; ++i) {
    ContainerSpec spec;
    spec.name = fmt::format("dlbench-a-{}-{}", getpid(), i);
    spec.image = kImage;
    spec.command = {"true"};
    spec.labels = bench;
    spec.networkMode = "none";
    auto t0 = Steady::now();
    auto id = test::runAsync(io, rt.create(spec));
    if (!id.ok() || !test::runAsync(io, rt.start(id.value())).ok()) return 1;
    auto t1 = Steady::now();

    const std::string created = raw.call(createRequest(fmt::format("dlbench-r-{}-{}", getpid(), i)));
    const auto idPos = created.find("\"Id\":\"");
    raw.call(startRequest(created.substr(idPos + 6, 64)));
    auto t2 = Steady::now();
    if (i >= 0) {
      adapter.push_back(ms(t1 - t0));
      direct.push_back(ms(t2 - t1));
    }
  }

  // Exit-event latency: short-lived containers, events through the adapter's watch.
  std::vector<double> eventLatency;
  std::map<std::string, std::chrono::system_clock::time_point> received;
  rt.watch(bench, {[&](const RuntimeEvent& e) {
                     if (e.kind == RuntimeEvent::Kind::Exit) received[e.containerId] = std::chrono::system_clock::now();
                   }, nullptr, nullptr});
  test::pumpUntil(io, [] { return false; }, std::chrono::milliseconds(500));
  for (int i = 0; i < 20; ++i) {
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
    if (received.count(id.value()) && info.ok() && info->finishedAt) {
      eventLatency.push_back(std::chrono::duration<double, std::milli>(received[id.value()] - *info->finishedAt).count());
    }
  }
  rt.stopWatching();

  auto left = test::runAsync(io, rt.list(bench));
  if (left.ok()) {
    for (const auto& c : left.value()) test::runAsync(io, rt.remove(c.id));
  }

  const Stats a = stats(adapter), d = stats(direct), e = stats(eventLatency);
  std::printf("create+start over %d containers (ms)    median    p95     mean\n", count);
  std::printf("  DockerRuntime (Beast, coroutines)  %7.2f %7.2f %7.2f\n", a.median, a.p95, a.mean);
  std::printf("  raw blocking socket client         %7.2f %7.2f %7.2f\n", d.median, d.p95, d.mean);
  std::printf("  adapter overhead (median)          %+6.1f%%\n", 100.0 * (a.median - d.median) / d.median);
  std::printf("exit event latency over %zu exits (ms)  %7.2f %7.2f %7.2f\n", eventLatency.size(), e.median, e.p95, e.mean);
  return 0;
}
