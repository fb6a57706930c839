#pragma once
// Every JSON document daemonlet writes goes through here. Bytes that are not UTF-8 (an
// engine message, a container's output, an excerpt cut mid-character) become U+FFFD
// instead of making nlohmann::json throw in the middle of a log line or a response.
#include <string>

#include <nlohmann/json.hpp>

namespace daemonlet {

inline std::string jsonText(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace daemonlet
