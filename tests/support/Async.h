#pragma once
// Runs one coroutine to completion on a test's io_context, with a deadline, while other
// work (event watches) keeps going on the same context.
#include <chrono>
#include <optional>
#include <stdexcept>

#include "runtime/Asio.h"

namespace daemonlet::test {

template <class T>
T runAsync(asio::io_context& io, asio::awaitable<T> work, std::chrono::seconds limit = std::chrono::seconds(120)) {
  std::optional<T> result;
  std::exception_ptr failure;
  asio::co_spawn(
      io, [&result, w = std::move(work)]() mutable -> asio::awaitable<void> { result.emplace(co_await std::move(w)); },
      [&failure](std::exception_ptr e) { failure = e; });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!result && !failure && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  if (failure) std::rethrow_exception(failure);
  if (!result) throw std::runtime_error("coroutine did not finish in time");
  return std::move(*result);
}

// Keeps the io_context turning until `done()` or the limit; true when done() held.
template <class Predicate>
bool pumpUntil(asio::io_context& io, Predicate done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace daemonlet::test
