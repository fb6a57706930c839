#pragma once
// Where the desired state comes from (DESIGN 3.4): a definitions directory or a control
// endpoint. A source calls its handler on the agent's executor whenever it has a new,
// valid desired state; input that fails validation never reaches the handler (P6).
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/DesiredState.h"

namespace daemonlet::agent {

// A desired state with the version its source gave it (the control endpoint's ETag;
// empty for a directory).
struct VersionedDesiredState {
  config::DesiredState state;
  std::string etag;
};

class DesiredStateSource {
 public:
  // Shared, not copied: the source keeps the state it last gave (to fall back on per file)
  // and the agent runs it; at 1,000 tasks each copy is megabytes (issue 15).
  using Shared = std::shared_ptr<const VersionedDesiredState>;
  using Handler = std::function<void(Shared)>;
  virtual ~DesiredStateSource() = default;

  // `lastGood` is the state saved by a previous run (stateDir/state.json).
  virtual void start(Handler onChange, std::optional<VersionedDesiredState> lastGood) = 0;
  // The agent's status report changed (DESIGN 3.5); `render` gives the newest when called.
  // Sources without a peer ignore it; the control endpoint renders it when it sends.
  using ReportRenderer = std::function<nlohmann::json()>;
  virtual void publish(ReportRenderer /*render*/) {}
  // Requests and errors so far, for /metrics.
  virtual std::int64_t errors() const { return 0; }
  // Why the last good state is being kept right now (a directory gone or unlistable).
  virtual std::vector<std::string> problems() const { return {}; }
};

}  // namespace daemonlet::agent
