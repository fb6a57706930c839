#pragma once
// Internal to runtime/: translation between our container values and the Docker Engine
// API's JSON (API 1.40/1.41). Pure functions, tested without an engine.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/Container.h"
#include "runtime/Result.h"

namespace daemonlet::runtime::docker {

nlohmann::json createBody(const ContainerSpec& spec);
Result<ContainerInfo> parseInspect(const nlohmann::json& inspect);
nlohmann::json volumeCreateBody(const VolumeSpec& spec);
Result<VolumeInfo> parseVolume(const nlohmann::json& volume);
// /info's Plugins.Log: the log drivers the engine can use.
std::vector<std::string> parseLogDrivers(const nlohmann::json& info);
// nullopt for events we do not track (exec_*, attach, ...) or lines that are not JSON.
std::optional<RuntimeEvent> parseEvent(std::string_view line);
// The event stream's framing: hands each complete, non-empty line of `buffer` to `onLine`
// and keeps only the unfinished rest, so that bytes may arrive in any chunks.
void takeLines(std::string& buffer, const std::function<void(std::string_view)>& onLine);
// `{"label":["k=v",...]}` plus `extra` filters, URL-encoded for a query string.
std::string filtersQuery(const LabelSelector& selector, const nlohmann::json& extra = nlohmann::json::object());
// RFC 3339 with nanoseconds, as Docker writes it; its zero time ("0001-01-01T00:00:00Z") is nullopt.
std::optional<Clock::time_point> parseTime(std::string_view text);
std::string urlEncode(std::string_view text);
ContainerState parseState(std::string_view status);

// The engine's JSON is not ours to trust: a member of the wrong type reads as absent here,
// never as an exception out of the agent.
// GET /version and GET /info, at the negotiated API version `api`.
EngineInfo parseEngineInfo(const nlohmann::json& version, const nlohmann::json& info, std::string api);
// POST /containers/create's answer: the new container's id.
std::optional<std::string> createdId(const nlohmann::json& answer);
// GET /containers/json: the ids listed.
std::vector<std::string> listedIds(const nlohmann::json& list);
// Streams such as pull and load answer 200 and put failures inside the body, one JSON
// object per line: the first failure's message.
std::optional<std::string> streamedError(const std::string& body);
Health parseHealth(std::string_view status);

}  // namespace daemonlet::runtime::docker
