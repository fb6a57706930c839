#include "agent/Executor.h"

#include <fstream>

#include "agent/ContainerSpecBuilder.h"

namespace daemonlet::agent {

Executor::Executor(asio::any_io_executor executor, runtime::Runtime& runtime, Logger& log, std::string instanceId)
    : executor_(std::move(executor)), runtime_(runtime), log_(log), instanceId_(std::move(instanceId)) {}

void Executor::notify() {
  if (changed_) changed_();
}

ObservedState Executor::observed() const {
  ObservedState out;
  out.containers.reserve(containers_.size());
  for (const auto& [id, c] : containers_) out.containers.push_back(c);
  return out;
}

bool Executor::inFlight(Kind kind) const {
  return std::any_of(inFlight_.begin(), inFlight_.end(), [&](const auto& kv) { return kv.second == kind; });
}

void Executor::upsert(const runtime::ContainerInfo& info) {
  auto instance = info.labels.find(label::kInstance);
  if (instance == info.labels.end() || instance->second != instanceId_) return;
  if (auto c = observe(info)) containers_[info.id] = std::move(*c);
}

void Executor::applySnapshot(const std::vector<runtime::ContainerInfo>& containers) {
  containers_.clear();
  for (const auto& info : containers) upsert(info);
  notify();
}

asio::awaitable<runtime::Status> Executor::refresh() {
  auto listed = co_await runtime_.list(managedSelector());
  if (!listed) co_return listed.error();
  containers_.clear();
  for (const auto& info : listed.value()) upsert(info);
  co_return runtime::Done{};
}

void Executor::applyEvent(const runtime::RuntimeEvent& event) {
  if (event.kind == runtime::RuntimeEvent::Kind::Destroy) {
    if (containers_.erase(event.containerId)) notify();
    return;
  }
  asio::co_spawn(executor_, refreshOne(event.containerId), asio::detached);
}

asio::awaitable<void> Executor::refreshOne(std::string id) {
  auto info = co_await runtime_.inspect(id);
  if (info) upsert(info.value());
  else if (info.error().code == runtime::Error::Code::NotFound) containers_.erase(id);
  notify();
}

void Executor::execute(const std::vector<Action>& actions) {
  for (const auto& action : actions) {
    if (inFlight_.count(action.containerName)) continue;  // never the same step twice
    inFlight_[action.containerName] = action.kind;
    asio::co_spawn(executor_, run(action), asio::detached);
  }
}

void Executor::fail(const Action& action, const std::string& message) {
  log_.error("{} {}: {} failed: {}", toString(action.kind), action.owner, describe(action), message);
  if (failed_) failed_({action.containerName, action.kind, action.owner, message});
}

asio::awaitable<void> Executor::run(Action action) {
  log_.debug("{} {}: {}", toString(action.kind), action.owner, describe(action));
  switch (action.type) {
    case Action::Type::Create:
      co_await create(action);
      break;
    case Action::Type::Start: {
      auto r = co_await runtime_.start(action.containerId);
      if (!r) fail(action, r.error().message);
      else log_.info("{} {}: started {}", toString(action.kind), action.owner, action.containerName);
      auto info = co_await runtime_.inspect(action.containerId);
      if (info) upsert(info.value());
      break;
    }
    case Action::Type::Stop: {
      log_.info("{} {}: stopping {} ({}; SIGKILL after {} s)", toString(action.kind), action.owner, action.containerName,
                action.reason, action.stopTimeout.count());
      auto r = co_await runtime_.stop(action.containerId, action.stopTimeout);
      if (!r) log_.error("{} {}: stop {} failed: {}", toString(action.kind), action.owner, action.containerName, r.error().message);
      auto info = co_await runtime_.inspect(action.containerId);
      if (info) {
        upsert(info.value());
        log_.info("{} {}: {} stopped (exit code {})", toString(action.kind), action.owner, action.containerName, info->exitCode);
      }
      break;
    }
    case Action::Type::Remove: {
      auto r = co_await runtime_.remove(action.containerId);
      if (!r) log_.error("{} {}: remove {} failed: {}", toString(action.kind), action.owner, action.containerName, r.error().message);
      else containers_.erase(action.containerId);
      break;
    }
  }
  inFlight_.erase(action.containerName);
  notify();
}

asio::awaitable<void> Executor::create(const Action& action) {
  const config::TaskDefinition& def = *action.definition;
  const config::ContainerDefinition* container = def.container(action.container);
  if (!container) co_return;
  if (!imagesPresent_.count(container->image)) {
    auto image = co_await runtime_.ensureImage(container->image);
    if (!image) {
      fail(action, image.error().message);
      co_return;
    }
    imagesPresent_.insert(container->image);
  }
  std::string envError;
  auto fromFiles = readEnvironmentFiles(container->environmentFiles, envError);
  if (!envError.empty()) {
    fail(action, envError);
    co_return;
  }
  auto spec = buildContainerSpec(action.kind, def, action.kind == Kind::Task ? action.owner : "", *container, instanceId_, fromFiles);
  auto id = co_await runtime_.create(spec);
  if (!id) {
    fail(action, id.error().message);
    co_return;
  }
  auto info = co_await runtime_.inspect(id.value());
  if (info) upsert(info.value());
}

std::vector<std::string> readEnvironmentFiles(const std::vector<std::string>& paths, std::string& error) {
  std::vector<std::string> out;
  for (const auto& path : paths) {
    std::ifstream in(path);
    if (!in) {
      error = "cannot read environment file " + path;
      return {};
    }
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#' || line.find('=') == std::string::npos) continue;
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace daemonlet::agent
