#pragma once
// The agent's one io_context. Coroutines still suspended when the agent returns (a create
// waiting on the engine, a volume removal, a listing) hold guards that refer to the agent
// and its executor; the io_context would destroy them only in its own destructor, after
// the agent is gone (the chaos campaign saw the agent die with SIGSEGV and SIGABRT on its
// way out). discardPendingWork() destroys them while everything they refer to is alive.
#include <boost/asio/io_context.hpp>

namespace daemonlet::agent {

class EventLoop : public boost::asio::io_context {
 public:
  // Unwinds every suspended coroutine and drops every queued handler without running it.
  // The loop cannot run afterwards.
  void discardPendingWork() { shutdown(); }
};

}  // namespace daemonlet::agent
