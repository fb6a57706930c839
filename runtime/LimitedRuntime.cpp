#include "runtime/LimitedRuntime.h"

namespace daemonlet::runtime {

LimitedRuntime::LimitedRuntime(asio::any_io_executor executor, RuntimePtr inner, std::size_t limit)
    : inner_(std::move(inner)), limiter_(std::move(executor), limit) {}

// Each call holds its slot from its turn until the inner call has answered. `call` makes
// the inner call's coroutine; it is not begun before the slot is held.
template <class Call>
auto LimitedRuntime::limited(Call call) -> decltype(call()) {
  auto slot = co_await limiter_.acquire();
  co_return co_await call();
}

asio::awaitable<Result<EngineInfo>> LimitedRuntime::version() {
  return limited([this]() mutable { return inner_->version(); });
}
asio::awaitable<Status> LimitedRuntime::ensureImage(std::string image) {
  return limited([this, image = std::move(image)]() mutable { return inner_->ensureImage(std::move(image)); });
}
asio::awaitable<Status> LimitedRuntime::loadImage(std::string tarPath) {
  return limited([this, tarPath = std::move(tarPath)]() mutable { return inner_->loadImage(std::move(tarPath)); });
}
asio::awaitable<Status> LimitedRuntime::ensureNetwork(NetworkSpec spec) {
  return limited([this, spec = std::move(spec)]() mutable { return inner_->ensureNetwork(std::move(spec)); });
}
asio::awaitable<Result<std::string>> LimitedRuntime::create(ContainerSpec spec) {
  return limited([this, spec = std::move(spec)]() mutable { return inner_->create(std::move(spec)); });
}
asio::awaitable<Status> LimitedRuntime::start(std::string id) {
  return limited([this, id = std::move(id)]() mutable { return inner_->start(std::move(id)); });
}
asio::awaitable<Status> LimitedRuntime::stop(std::string id, std::chrono::seconds timeout) {
  return limited([this, id = std::move(id), timeout]() mutable { return inner_->stop(std::move(id), timeout); });
}
asio::awaitable<Status> LimitedRuntime::kill(std::string id, int signal) {
  return limited([this, id = std::move(id), signal]() mutable { return inner_->kill(std::move(id), signal); });
}
asio::awaitable<Status> LimitedRuntime::remove(std::string id) {
  return limited([this, id = std::move(id)]() mutable { return inner_->remove(std::move(id)); });
}
asio::awaitable<Result<ContainerInfo>> LimitedRuntime::inspect(std::string id) {
  return limited([this, id = std::move(id)]() mutable { return inner_->inspect(std::move(id)); });
}
asio::awaitable<Result<std::vector<ContainerInfo>>> LimitedRuntime::list(LabelSelector selector) {
  return limited([this, selector = std::move(selector)]() mutable { return inner_->list(std::move(selector)); });
}
asio::awaitable<Result<VolumeInfo>> LimitedRuntime::createVolume(VolumeSpec spec) {
  return limited([this, spec = std::move(spec)]() mutable { return inner_->createVolume(std::move(spec)); });
}
asio::awaitable<Result<VolumeInfo>> LimitedRuntime::inspectVolume(std::string name) {
  return limited([this, name = std::move(name)]() mutable { return inner_->inspectVolume(std::move(name)); });
}
asio::awaitable<Status> LimitedRuntime::removeVolume(std::string name) {
  return limited([this, name = std::move(name)]() mutable { return inner_->removeVolume(std::move(name)); });
}
asio::awaitable<Result<std::vector<VolumeInfo>>> LimitedRuntime::listVolumes(LabelSelector selector) {
  return limited([this, selector = std::move(selector)]() mutable { return inner_->listVolumes(std::move(selector)); });
}
asio::awaitable<Result<std::vector<std::string>>> LimitedRuntime::logDrivers() {
  return limited([this]() mutable { return inner_->logDrivers(); });
}

}  // namespace daemonlet::runtime
