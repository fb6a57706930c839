// The executor's bookkeeping when a step throws (issue 10, item 5). The runtime here is a
// stand-in that throws: it proves nothing about an adapter, only that a throwing step is
// logged, counted, backed off and never left "in flight".
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "ReconcilerWorld.h"
#include "agent/Executor.h"
#include "support/Async.h"

using namespace daemonlet;
using namespace daemonlet::agent;
using namespace std::chrono_literals;

namespace {

class ThrowingRuntime final : public runtime::Runtime {
 public:
  asio::awaitable<runtime::Result<runtime::EngineInfo>> version() override { co_return runtime::EngineInfo{"test", "0", "0"}; }
  asio::awaitable<runtime::Status> ensureImage(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Status> loadImage(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Result<std::string>> create(runtime::ContainerSpec) override {
    throw std::runtime_error("[json.exception.type_error.316] invalid UTF-8 byte");
    co_return std::string();
  }
  asio::awaitable<runtime::Status> start(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Status> stop(std::string, std::chrono::seconds) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Status> kill(std::string, int) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Status> remove(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Result<runtime::ContainerInfo>> inspect(std::string) override {
    co_return runtime::Error{runtime::Error::Code::NotFound, "no"};
  }
  asio::awaitable<runtime::Result<std::vector<runtime::ContainerInfo>>> list(runtime::LabelSelector) override {
    co_return std::vector<runtime::ContainerInfo>{};
  }
  asio::awaitable<runtime::Result<runtime::VolumeInfo>> createVolume(runtime::VolumeSpec v) override {
    co_return runtime::VolumeInfo{v.name, v.driver, v.driverOpts, v.labels};
  }
  asio::awaitable<runtime::Result<runtime::VolumeInfo>> inspectVolume(std::string) override {
    co_return runtime::Error{runtime::Error::Code::NotFound, "no"};
  }
  asio::awaitable<runtime::Status> removeVolume(std::string) override { co_return runtime::Done{}; }
  asio::awaitable<runtime::Result<std::vector<runtime::VolumeInfo>>> listVolumes(runtime::LabelSelector) override {
    co_return std::vector<runtime::VolumeInfo>{};
  }
  asio::awaitable<runtime::Result<std::vector<std::string>>> logDrivers() override { co_return std::vector<std::string>{"json-file"}; }
  void watch(runtime::LabelSelector, runtime::EventHandlers) override {}
  void stopWatching() override {}
};

}  // namespace

TEST_CASE("executor: a step that throws is logged, counted and backed off, never left in flight") {
  asio::io_context io;
  ThrowingRuntime runtime;
  std::ostringstream logs;
  Logger log{logs};
  Executor executor{io.get_executor(), runtime, log, "i-1"};
  std::vector<Executor::Failure> failures;
  std::vector<std::string> internal;
  executor.onFailure([&](const Executor::Failure& f) { failures.push_back(f); });
  executor.onInternalError([&](const std::string& where, const std::string& what) { internal.push_back(where + ": " + what); });

  auto def = test::simple("web", 1);
  Action create;
  create.type = Action::Type::Create;
  create.kind = Kind::Task;
  create.owner = "web-1";
  create.container = "main";
  create.containerName = containerName(Kind::Task, def, "web-1", "main", "i-1");
  create.definition = def;
  executor.execute({create});
  REQUIRE_FALSE(executor.idle());
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  REQUIRE(failures.size() == 1);  // the agent backs off on this, as on any failed create
  CHECK(failures[0].message.find("internal error") != std::string::npos);
  REQUIRE(internal.size() == 1);
  CHECK(internal[0].find("invalid UTF-8") != std::string::npos);
  executor.execute({create});  // and the step can be tried again
  REQUIRE(test::pumpUntil(io, [&] { return executor.idle(); }, 5s));
  CHECK(failures.size() == 2);
}
