#pragma once
// HTTP/1.1 over a unix socket with Boost.Beast: what the Docker Engine API speaks.
// Every request has a deadline; connections are kept alive and reused; long-lived
// streams (events) are read line by line and can be cancelled at shutdown.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "runtime/Asio.h"
#include "runtime/Result.h"

namespace daemonlet::runtime {

namespace http = boost::beast::http;

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names

  std::string header(const std::string& lowerName) const;
};

class UnixHttpClient {
 public:
  using Stream = boost::beast::basic_stream<asio::local::stream_protocol>;
  static constexpr std::size_t kMaxBodyBytes = 64 * 1024 * 1024;

  UnixHttpClient(asio::any_io_executor executor, std::string socketPath);
  ~UnixHttpClient();

  const std::string& socketPath() const { return socketPath_; }

  asio::awaitable<Result<HttpResponse>> request(http::verb method, std::string target,
                                                std::string body, std::string contentType,
                                                std::chrono::milliseconds deadline);

  // Sends a request and hands each '\n'-terminated line of the response body to `onLine`
  // as it arrives (chunk boundaries do not matter). `onOpen` runs once the response
  // headers said 200. Returns when the peer closes the stream, on error, or after
  // cancelStreams(); a non-200 answer is an error carrying the engine's message.
  asio::awaitable<Status> streamLines(http::verb method, std::string target,
                                      std::chrono::milliseconds connectDeadline,
                                      std::function<void()> onOpen,
                                      std::function<void(std::string_view)> onLine);

  // Closes every open stream (their streamLines return Cancelled) and idle connection.
  void cancelStreams();

 private:
  asio::awaitable<Result<std::unique_ptr<Stream>>> connect(std::chrono::milliseconds deadline);
  Error mapError(const boost::system::error_code& ec, std::string_view what) const;

  asio::any_io_executor executor_;
  std::string socketPath_;
  std::vector<std::unique_ptr<Stream>> idle_;
  std::set<Stream*> streaming_;
};

// The engine's error message out of a JSON error body ({"message": "..."}), else the
// body itself, shortened.
std::string engineMessage(const std::string& body);

}  // namespace daemonlet::runtime
