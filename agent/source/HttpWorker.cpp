#include "agent/source/HttpWorker.h"

#include "agent/source/Curl.h"

#include <algorithm>
#include <cctype>
#include <unordered_map>

#include <fmt/format.h>

namespace daemonlet::agent {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

HttpResponse::Failure classify(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT: return HttpResponse::Failure::Connect;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return HttpResponse::Failure::Resolve;
    case CURLE_OPERATION_TIMEDOUT: return HttpResponse::Failure::Timeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE: return HttpResponse::Failure::Tls;
    default: return HttpResponse::Failure::Other;
  }
}

}  // namespace

std::string HttpResponse::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpWorker::Transfer {
  HttpRequest request;
  std::function<void(HttpResponse)> done;
  HttpResponse response;
  CURL* easy = nullptr;
  curl_slist* headerList = nullptr;
  char errorBuffer[CURL_ERROR_SIZE] = {};
  bool tooLarge = false;

  ~Transfer() {
    if (easy) curl().easy_cleanup(easy);
    curl().slist_free_all(headerList);
  }

  static size_t onBody(char* data, size_t size, size_t count, void* self) {
    auto& t = *static_cast<Transfer*>(self);
    const size_t n = size * count;
    if (t.response.body.size() + n > t.request.maxBodyBytes) {
      t.tooLarge = true;
      return 0;  // aborts the transfer
    }
    t.response.body.append(data, n);
    return n;
  }

  static size_t onHeader(char* data, size_t size, size_t count, void* self) {
    auto& t = *static_cast<Transfer*>(self);
    const size_t n = size * count;
    const std::string_view line(data, n);
    if (line.rfind("HTTP/", 0) == 0) {
      t.response.headers.clear();  // a 100 Continue came first: keep the final answer's
      return n;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return n;
    const std::string name = lower(std::string(line.substr(0, colon)));
    const std::string value = trim(line.substr(colon + 1));
    if (name == "content-length") {
      // Refuse an oversized body before reading it.
      const auto length = std::strtoull(value.c_str(), nullptr, 10);
      if (length > t.request.maxBodyBytes) {
        t.tooLarge = true;
        return 0;
      }
    }
    t.response.headers[name] = value;
    return n;
  }

  void prepare() {
    easy = curl().easy_init();
    curl().easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    curl().easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl().easy_setopt(easy, CURLOPT_ERRORBUFFER, errorBuffer);
    curl().easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl().easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl().easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<long>(request.timeout.count(), 10000)));
    curl().easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl().easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::onBody);
    curl().easy_setopt(easy, CURLOPT_WRITEDATA, this);
    curl().easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Transfer::onHeader);
    curl().easy_setopt(easy, CURLOPT_HEADERDATA, this);
    // Verification stays on (the libcurl default); only the trust anchors can change.
    if (!request.tls.caFile.empty()) curl().easy_setopt(easy, CURLOPT_CAINFO, request.tls.caFile.c_str());
    if (!request.tls.clientCertFile.empty()) curl().easy_setopt(easy, CURLOPT_SSLCERT, request.tls.clientCertFile.c_str());
    if (!request.tls.clientKeyFile.empty()) curl().easy_setopt(easy, CURLOPT_SSLKEY, request.tls.clientKeyFile.c_str());
    if (request.method != "GET") {
      curl().easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      curl().easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
      curl().easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
    }
    headerList = curl().slist_append(headerList, "Expect:");  // no 100-continue round trip
    for (const auto& h : request.headers) headerList = curl().slist_append(headerList, h.c_str());
    curl().easy_setopt(easy, CURLOPT_HTTPHEADER, headerList);
  }

  void finish(CURLcode code) {
    if (code == CURLE_OK) {
      curl().easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
      return;
    }
    response.status = 0;
    if (tooLarge) {
      response.failure = HttpResponse::Failure::TooLarge;
      response.error = fmt::format("response body larger than {} MiB refused", request.maxBodyBytes >> 20);
      return;
    }
    response.failure = classify(code);
    response.error = errorBuffer[0] ? errorBuffer : curl().easy_strerror(code);
    // With no resolver answering, a lookup ends as a timeout: still a DNS problem.
    if (code == CURLE_OPERATION_TIMEDOUT && response.error.rfind("Resolving timed out", 0) == 0) {
      response.failure = HttpResponse::Failure::Resolve;
    }
  }
};

HttpWorker::HttpWorker(asio::any_io_executor executor) : executor_(std::move(executor)) {
  multi_ = curl().multi_init();
  thread_ = std::thread([this] { loop(); });
}

HttpWorker::~HttpWorker() {
  stopping_ = true;
  curl().multi_wakeup(static_cast<CURLM*>(multi_));
  thread_.join();
  curl().multi_cleanup(static_cast<CURLM*>(multi_));
}

void HttpWorker::submit(HttpRequest request, std::function<void(HttpResponse)> done) {
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  {
    std::lock_guard lock(mutex_);
    queued_.push_back(std::move(t));
  }
  curl().multi_wakeup(static_cast<CURLM*>(multi_));
}

void HttpWorker::loop() {
  auto* multi = static_cast<CURLM*>(multi_);
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
  while (!stopping_) {
    {
      std::lock_guard lock(mutex_);
      for (auto& t : queued_) {
        t->prepare();
        curl().multi_add_handle(multi, t->easy);
        CURL* key = t->easy;
        active.emplace(key, std::move(t));
      }
      queued_.clear();
    }
    int running = 0;
    curl().multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl().multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = active.find(msg->easy_handle);
      if (it == active.end()) continue;
      std::shared_ptr<Transfer> t = std::move(it->second);
      active.erase(it);
      curl().multi_remove_handle(multi, t->easy);
      t->finish(msg->data.result);
      asio::post(executor_, [t] { t->done(std::move(t->response)); });
    }
    curl().multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  for (auto& [easy, t] : active) curl().multi_remove_handle(multi, easy);
}

}  // namespace daemonlet::agent
