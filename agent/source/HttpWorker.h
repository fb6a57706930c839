#pragma once
// libcurl off the agent's thread (DESIGN 2): one worker thread drives a curl multi
// handle, so a 55 s long poll and a status report run side by side; each answer is
// posted back to the agent's executor. Destroying the worker aborts whatever is in
// flight at once (curl_multi_wakeup), without calling the completion handlers.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/Asio.h"

namespace daemonlet::agent {

struct TlsFiles {
  std::string caFile;          // empty: the system trust store
  std::string clientCertFile;  // mTLS, with clientKeyFile
  std::string clientKeyFile;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::chrono::milliseconds timeout{15000};
  TlsFiles tls;
  std::size_t maxBodyBytes = 8 << 20;
};

struct HttpResponse {
  // Why no usable HTTP answer arrived; None when `status` holds one.
  enum class Failure { None, Connect, Resolve, Timeout, Tls, TooLarge, Other };
  Failure failure = Failure::None;
  std::string error;  // what libcurl said, for the log
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  std::string header(const std::string& lowerName) const;
};

class HttpWorker {
 public:
  explicit HttpWorker(asio::any_io_executor executor);
  ~HttpWorker();
  HttpWorker(const HttpWorker&) = delete;
  HttpWorker& operator=(const HttpWorker&) = delete;

  // `done` runs on the executor, unless the worker is destroyed first.
  void submit(HttpRequest request, std::function<void(HttpResponse)> done);

 private:
  struct Transfer;
  void loop();

  asio::any_io_executor executor_;
  void* multi_ = nullptr;  // CURLM*, kept out of this header
  std::mutex mutex_;
  std::deque<std::unique_ptr<Transfer>> queued_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace daemonlet::agent
