#pragma once
// A blocking client for a local HTTP API: the agent's introspection API, for
// `daemonlet status` and `daemonlet drain`, and the test control endpoint's admin API
// (libcurl; proxies are never used for it).
#include <string>

namespace daemonlet::agent {

struct ApiReply {
  long status = 0;     // 0 = no answer
  std::string body;
  std::string error;  // why there was no answer
};

// `endpoint` is HOST:PORT, or the path of a unix socket (starting with '/').
ApiReply callApi(const std::string& endpoint, const std::string& method, const std::string& path, long timeoutMs = 5000,
                 const std::string& body = "");

}  // namespace daemonlet::agent
