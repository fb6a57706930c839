#pragma once
// Carries out a plan through the runtime and keeps the observed state: every action's
// result, every runtime event and every resync lands here. A step already under way is
// never issued again.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/Logger.h"
#include "agent/Reconciler.h"
#include "runtime/Runtime.h"

namespace daemonlet::agent {

class Executor {
 public:
  struct Failure {
    std::string containerName;
    Kind kind;
    std::string owner;
    std::string message;
  };

  Executor(asio::any_io_executor executor, runtime::Runtime& runtime, Logger& log, std::string instanceId);

  // Called after anything changed what the agent sees (an action finished, an event).
  void onChange(std::function<void()> callback) { changed_ = std::move(callback); }
  // Called when a create or start failed, so the caller can back off.
  void onFailure(std::function<void(const Failure&)> callback) { failed_ = std::move(callback); }

  void execute(const std::vector<Action>& actions);

  // Replaces the observed state with a full listing (start-up adoption, resync).
  asio::awaitable<runtime::Status> refresh();
  void applySnapshot(const std::vector<runtime::ContainerInfo>& containers);
  void applyEvent(const runtime::RuntimeEvent& event);

  ObservedState observed() const;
  bool inFlight(Kind kind) const;
  bool idle() const { return inFlight_.empty(); }

  // This instance's containers only: another agent may share the engine (a test, a
  // nested system container), and what it runs is none of ours to adopt or stop.
  runtime::LabelSelector managedSelector() const { return {{label::kManaged, "true"}, {label::kInstance, instanceId_}}; }

 private:
  asio::awaitable<void> run(Action action);
  asio::awaitable<void> create(const Action& action);
  asio::awaitable<void> refreshOne(std::string id);
  void upsert(const runtime::ContainerInfo& info);
  void fail(const Action& action, const std::string& message);
  void notify();

  asio::any_io_executor executor_;
  runtime::Runtime& runtime_;
  Logger& log_;
  std::string instanceId_;
  std::map<std::string, ObservedContainer> containers_;  // by id
  std::map<std::string, Kind> inFlight_;                 // by container name
  std::set<std::string> imagesPresent_;
  std::function<void()> changed_;
  std::function<void(const Failure&)> failed_;
};

// Reads environment files ("NAME=value" lines; blank lines and # comments skipped).
std::vector<std::string> readEnvironmentFiles(const std::vector<std::string>& paths, std::string& error);

}  // namespace daemonlet::agent
