#pragma once
// At most `limit` engine calls under way at once; the rest wait their turn, first come
// first served. Waiting is a suspended coroutine on the caller's io_context, never a
// blocked thread (issue 15: 1,000 tasks once sent ~440 starts at once and hung dockerd).
#include <cstddef>

#include "runtime/Asio.h"

namespace daemonlet::runtime {

class CallLimiter {
 public:
  // Held while a call is under way; its end hands the slot to the next waiter.
  class Slot {
   public:
    explicit Slot(CallLimiter* owner) : owner_(owner) {}
    Slot(Slot&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (owner_) owner_->release();
    }

   private:
    CallLimiter* owner_;
  };

  CallLimiter(asio::any_io_executor executor, std::size_t limit);

  asio::awaitable<Slot> acquire();

  std::size_t limit() const { return limit_; }
  std::size_t inFlight() const { return inFlight_; }
  std::size_t waiting() const { return waiting_; }
  std::size_t peakInFlight() const { return peak_; }

 private:
  void release();

  std::size_t limit_;
  std::size_t inFlight_ = 0;
  std::size_t waiting_ = 0;
  std::size_t peak_ = 0;
  // Never expires: each waiter waits on it, and a release cancels the oldest wait.
  asio::steady_timer turn_;
};

}  // namespace daemonlet::runtime
