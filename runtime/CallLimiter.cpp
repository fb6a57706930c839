#include "runtime/CallLimiter.h"

#include <algorithm>

namespace daemonlet::runtime {

CallLimiter::CallLimiter(asio::any_io_executor executor, std::size_t limit)
    : limit_(std::max<std::size_t>(limit, 1)), turn_(std::move(executor), asio::steady_timer::time_point::max()) {}

asio::awaitable<CallLimiter::Slot> CallLimiter::acquire() {
  if (inFlight_ < limit_ && waiting_ == 0) {
    peak_ = std::max(peak_, ++inFlight_);
    co_return Slot(this);
  }
  ++waiting_;
  boost::system::error_code ec;
  co_await turn_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  // Woken by release(), which passed its slot on: inFlight_ already counts this call.
  co_return Slot(this);
}

void CallLimiter::release() {
  if (waiting_ > 0) {
    // The slot goes to the oldest waiter directly, so a newcomer cannot overtake it.
    --waiting_;
    turn_.cancel_one();
    return;
  }
  --inFlight_;
}

}  // namespace daemonlet::runtime
