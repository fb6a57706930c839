#include "agent/api/ApiClient.h"

#include "agent/source/Curl.h"

namespace daemonlet::agent {
namespace {

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

ApiReply callApi(const std::string& endpoint, const std::string& method, const std::string& path, long timeoutMs,
                 const std::string& body) {
  ApiReply reply;
  const Curl* api = nullptr;
  try {
    api = &agent::curl();
  } catch (const std::exception& e) {
    reply.error = e.what();
    return reply;
  }
  CURL* curl = api->easy_init();
  if (!curl) {
    reply.error = "libcurl failed to initialise";
    return reply;
  }
  const bool socket = !endpoint.empty() && endpoint.front() == '/';
  const std::string url = "http://" + (socket ? std::string("localhost") : endpoint) + path;
  api->easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (socket) api->easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, endpoint.c_str());
  api->easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method != "GET") {
    api->easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    api->easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  api->easy_setopt(curl, CURLOPT_NOPROXY, "*");  // a proxy has no business seeing this host's agent
  api->easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeoutMs);
  api->easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  api->easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  const CURLcode code = api->easy_perform(curl);
  if (code == CURLE_OK) api->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  else reply.error = api->easy_strerror(code);
  api->easy_cleanup(curl);
  return reply;
}

}  // namespace daemonlet::agent
