#pragma once
// HTTP GET as a registry pull needs it. The runtime links no HTTP client: whoever builds
// the runtime passes one in (the agent brings libcurl, which it loads only when used).
// TLS is verified; a host is spoken to over plain http only when the pull is told so.
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/Result.h"

namespace daemonlet::runtime {

struct HttpGetRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string bodyFile;              // when set, the body goes to this file instead of `body`
  std::chrono::milliseconds timeout{60000};
};

struct HttpGetResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// Follows redirects; a transport failure (no connection, TLS, timeout) is an Error, any
// HTTP status is a response. Called on the adapter's worker threads: it may block.
using HttpGet = std::function<Result<HttpGetResponse>(const HttpGetRequest&)>;

}  // namespace daemonlet::runtime
