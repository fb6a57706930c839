// The bound on engine calls under way (issue 15): a burst of calls never has more than the
// limit at the engine, all of them finish, in the order asked, and the io_context keeps
// serving other work while they wait.
#include <catch2/catch.hpp>

#include <map>

#include "runtime/LimitedRuntime.h"

using namespace daemonlet;
using namespace daemonlet::runtime;
using namespace std::chrono_literals;

namespace {

// An engine that takes 5 ms per start and counts how many it serves at once. A stand-in
// for the engine is right here: what is tested is the queue in front of it.
class SlowEngine final : public Runtime {
 public:
  explicit SlowEngine(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  int underWay = 0, most = 0;
  std::vector<std::string> begun;

  asio::awaitable<Status> start(std::string id) override {
    begun.push_back(id);
    most = std::max(most, ++underWay);
    asio::steady_timer t(executor_, 5ms);
    co_await t.async_wait(asio::use_awaitable);
    --underWay;
    if (id == "fails") co_return Error{Error::Code::NotFound, "no such container: fails"};
    co_return Done{};
  }

  asio::awaitable<Result<EngineInfo>> version() override { co_return EngineInfo{}; }
  asio::awaitable<Status> ensureImage(std::string) override { co_return Done{}; }
  asio::awaitable<Status> loadImage(std::string) override { co_return Done{}; }
  asio::awaitable<Result<std::string>> create(ContainerSpec spec) override { co_return spec.name; }
  asio::awaitable<Status> stop(std::string, std::chrono::seconds) override { co_return Done{}; }
  asio::awaitable<Status> kill(std::string, int) override { co_return Done{}; }
  asio::awaitable<Status> remove(std::string) override { co_return Done{}; }
  asio::awaitable<Result<ContainerInfo>> inspect(std::string id) override { co_return Error{Error::Code::NotFound, id}; }
  asio::awaitable<Result<std::vector<ContainerInfo>>> list(LabelSelector) override { co_return std::vector<ContainerInfo>{}; }
  asio::awaitable<Result<VolumeInfo>> createVolume(VolumeSpec) override { co_return VolumeInfo{}; }
  asio::awaitable<Result<VolumeInfo>> inspectVolume(std::string name) override { co_return Error{Error::Code::NotFound, name}; }
  asio::awaitable<Status> removeVolume(std::string) override { co_return Done{}; }
  asio::awaitable<Result<std::vector<VolumeInfo>>> listVolumes(LabelSelector) override { co_return std::vector<VolumeInfo>{}; }
  asio::awaitable<Result<std::vector<std::string>>> logDrivers() override { co_return std::vector<std::string>{}; }
  void watch(LabelSelector, EventHandlers) override { ++watches; }
  void stopWatching() override {}

  int watches = 0;

 private:
  asio::any_io_executor executor_;
};

// co_spawn needs a default-constructible result; Status is not.
void startDetached(asio::io_context& io, Runtime& runtime, std::string id) {
  asio::co_spawn(io, [&runtime, id]() -> asio::awaitable<void> { co_await runtime.start(id); }, asio::detached);
}

}  // namespace

TEST_CASE("limited runtime: 200 starts at once reach the engine at most 4 at a time, all finish, in order") {
  asio::io_context io;
  auto owned = std::make_unique<SlowEngine>(io.get_executor());
  SlowEngine& engine = *owned;
  LimitedRuntime limited(io.get_executor(), std::move(owned), 4);

  std::vector<std::string> asked;
  std::map<std::string, bool> answered;  // id -> succeeded
  for (int i = 0; i < 200; ++i) {
    std::string id = i == 7 ? "fails" : "c" + std::to_string(i);
    asked.push_back(id);
    asio::co_spawn(io, [&, id]() -> asio::awaitable<void> {
      auto r = co_await limited.start(id);
      answered[id] = r.ok();
    }, asio::detached);
  }
  // Meanwhile the loop serves everything else: a timer due in 20 ms fires long before the
  // 200 starts (at least 250 ms at 4 x 5 ms) are through.
  std::size_t waitingWhenTimerFired = 0;
  asio::steady_timer other(io, 20ms);
  other.async_wait([&](auto) { waitingWhenTimerFired = limited.limiter().waiting(); });
  io.run();

  CHECK(engine.most == 4);
  CHECK(limited.limiter().peakInFlight() == 4);
  CHECK(waitingWhenTimerFired > 100);
  REQUIRE(answered.size() == 200);
  CHECK_FALSE(answered["fails"]);  // an error is passed back as it is, and frees its slot
  CHECK(answered["c199"]);
  CHECK(engine.begun == asked);  // first come, first served
  CHECK(limited.limiter().inFlight() == 0);
  CHECK(limited.limiter().waiting() == 0);
}

TEST_CASE("limited runtime: calls below the limit are not delayed, and the event watch is never queued") {
  asio::io_context io;
  auto owned = std::make_unique<SlowEngine>(io.get_executor());
  SlowEngine& engine = *owned;
  LimitedRuntime limited(io.get_executor(), std::move(owned), 8);
  for (int i = 0; i < 8; ++i) startDetached(io, limited, "c" + std::to_string(i));
  limited.watch({}, {});
  CHECK(engine.watches == 1);
  io.poll();  // every ready handler, no timer: all 8 starts have begun at once
  CHECK(engine.underWay == 8);
  CHECK(limited.limiter().waiting() == 0);
  io.run();
  CHECK(engine.begun.size() == 8);
}

TEST_CASE("limited runtime: a limit of 0 still lets calls through one at a time") {
  asio::io_context io;
  auto owned = std::make_unique<SlowEngine>(io.get_executor());
  SlowEngine& engine = *owned;
  LimitedRuntime limited(io.get_executor(), std::move(owned), 0);
  for (int i = 0; i < 5; ++i) startDetached(io, limited, "c" + std::to_string(i));
  io.run();
  CHECK(engine.most == 1);
  CHECK(engine.begun.size() == 5);
}
