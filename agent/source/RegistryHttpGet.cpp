#include "agent/source/RegistryHttpGet.h"

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "agent/source/Curl.h"

namespace daemonlet::agent {
namespace {

constexpr std::size_t kMaxInMemoryBody = 8u << 20;  // manifests, tokens, error bodies

struct Transfer {
  runtime::HttpGetResponse response;
  std::FILE* file = nullptr;
  bool tooLarge = false;

  static std::size_t onBody(char* data, std::size_t size, std::size_t count, void* self) {
    auto& t = *static_cast<Transfer*>(self);
    const std::size_t n = size * count;
    if (t.file) return std::fwrite(data, 1, n, t.file);
    if (t.response.body.size() + n > kMaxInMemoryBody) {
      t.tooLarge = true;
      return 0;
    }
    t.response.body.append(data, n);
    return n;
  }
  static std::size_t onHeader(char* data, std::size_t size, std::size_t count, void* self) {
    auto& t = *static_cast<Transfer*>(self);
    const std::size_t n = size * count;
    std::string line(data, n);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect): its headers only
      t.response.headers.clear();
      return n;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) return n;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    const auto first = value.find_first_not_of(" \t");
    const auto last = value.find_last_not_of(" \t\r\n");
    t.response.headers[name] = first == std::string::npos ? "" : value.substr(first, last - first + 1);
    return n;
  }
};

runtime::Result<runtime::HttpGetResponse> get(const runtime::HttpGetRequest& request) {
  using runtime::Error;
  const Curl* lib = nullptr;
  try {
    lib = &curl();
  } catch (const std::exception& e) {
    return Error{Error::Code::Unsupported, e.what()};
  }
  std::unique_ptr<CURL, void (*)(CURL*)> easy(lib->easy_init(), lib->easy_cleanup);
  curl_slist* headers = nullptr;
  for (const auto& h : request.headers) headers = lib->slist_append(headers, h.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headerGuard(headers, lib->slist_free_all);
  Transfer t;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(nullptr, &std::fclose);
  if (!request.bodyFile.empty()) {
    file.reset(std::fopen(request.bodyFile.c_str(), "wb"));
    if (!file) return Error{Error::Code::Engine, fmt::format("cannot write {}", request.bodyFile)};
    t.file = file.get();
  }
  char errorBuffer[CURL_ERROR_SIZE] = {};
  CURL* e = easy.get();
  lib->easy_setopt(e, CURLOPT_URL, request.url.c_str());
  lib->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  lib->easy_setopt(e, CURLOPT_ERRORBUFFER, errorBuffer);
  lib->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  lib->easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");  // a redirect never downgrades to http
  lib->easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  lib->easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  lib->easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  lib->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  lib->easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  lib->easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::onBody);
  lib->easy_setopt(e, CURLOPT_WRITEDATA, &t);
  lib->easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::onHeader);
  lib->easy_setopt(e, CURLOPT_HEADERDATA, &t);
  const CURLcode code = lib->easy_perform(e);
  if (code != CURLE_OK) {
    if (t.tooLarge) return Error{Error::Code::Protocol, fmt::format("GET {}: body larger than {} MiB", request.url, kMaxInMemoryBody >> 20)};
    return Error{code == CURLE_OPERATION_TIMEDOUT ? Error::Code::Timeout : Error::Code::Unavailable,
                 fmt::format("GET {}: {}", request.url, errorBuffer[0] ? errorBuffer : lib->easy_strerror(code))};
  }
  lib->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t.response.status);
  if (file && std::fflush(file.get()) != 0) return Error{Error::Code::Engine, fmt::format("cannot write {}", request.bodyFile)};
  return std::move(t.response);
}

}  // namespace

runtime::HttpGet registryHttpGet() { return &get; }

}  // namespace daemonlet::agent
