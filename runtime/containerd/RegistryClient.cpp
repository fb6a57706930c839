#include "runtime/containerd/RegistryClient.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace daemonlet::runtime::containerd {
namespace {

using json = nlohmann::json;

const char* const kAcceptManifests =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

std::string urlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

// The auth-params of `Bearer realm="...",service="...",scope="..."` (RFC 7235).
std::map<std::string, std::string> challengeParams(const std::string& header) {
  std::map<std::string, std::string> out;
  std::size_t i = header.find(' ');
  while (i != std::string::npos && i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    const auto eq = header.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = header.substr(i, eq - i);
    std::string value;
    i = eq + 1;
    if (i < header.size() && header[i] == '"') {
      for (++i; i < header.size() && header[i] != '"'; ++i) {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value += header[i];
      }
      ++i;
    } else {
      const auto end = header.find(',', i);
      value = header.substr(i, end == std::string::npos ? std::string::npos : end - i);
      i = end;
    }
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out[key] = value;
  }
  return out;
}

std::string excerpt(const std::string& body) {
  std::string s = body.substr(0, 200);
  for (auto& c : s) if (c == '\n' || c == '\r') c = ' ';
  return s;
}

Error httpError(const std::string& what, const HttpGetResponse& r) {
  const auto code = r.status == 404 ? Error::Code::NotFound
                    : (r.status == 401 || r.status == 403) ? Error::Code::PermissionDenied
                                                           : Error::Code::Engine;
  return Error{code, fmt::format("{}: HTTP {}: {}", what, r.status, excerpt(r.body))};
}

}  // namespace

Result<RegistryReference> parseRegistryReference(const std::string& name) {
  const auto slash = name.find('/');
  if (slash == std::string::npos) return Error{Error::Code::Protocol, "image " + name + ": no registry host"};
  RegistryReference ref;
  ref.host = name.substr(0, slash);
  std::string rest = name.substr(slash + 1);
  if (const auto at = rest.find('@'); at != std::string::npos) {
    ref.repository = rest.substr(0, at);
    ref.reference = rest.substr(at + 1);
  } else if (const auto colon = rest.rfind(':'); colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
    ref.repository = rest.substr(0, colon);
    ref.reference = rest.substr(colon + 1);
  } else {
    ref.repository = rest;
    ref.reference = "latest";
  }
  if (ref.host == "docker.io") ref.host = "registry-1.docker.io";
  if (ref.repository.empty() || ref.reference.empty()) return Error{Error::Code::Protocol, "image " + name + ": no repository or tag"};
  return ref;
}

RegistryClient::RegistryClient(HttpGet get, RegistryReference ref, const std::set<std::string>& insecureHosts)
    : get_(std::move(get)), ref_(std::move(ref)) {
  base_ = fmt::format("{}://{}/v2/{}", insecureHosts.count(ref_.host) ? "http" : "https", ref_.host, ref_.repository);
}

Result<HttpGetResponse> RegistryClient::get(HttpGetRequest request, const std::string& what) {
  const auto plain = request.headers;
  for (int attempt = 0; attempt < 2; ++attempt) {
    request.headers = plain;
    if (!token_.empty()) request.headers.push_back("Authorization: Bearer " + token_);
    auto r = get_(request);
    if (!r) return Error{r.error().code, what + ": " + r.error().message};
    if (r->status != 401 || attempt == 1) return r;
    auto challenge = r->headers.find("www-authenticate");
    if (challenge == r->headers.end() || challenge->second.rfind("Bearer ", 0) != 0) return r;
    if (auto s = authorize(challenge->second, what); !s) return s.error();
  }
  return Error{Error::Code::PermissionDenied, what + ": refused"};
}

Status RegistryClient::authorize(const std::string& challenge, const std::string& what) {
  auto params = challengeParams(challenge);
  const std::string realm = params["realm"];
  // A token fetched over plain http could be read on the way: only for a registry that is
  // itself plain http by the operator's choice.
  if (realm.rfind("https://", 0) != 0 && !(realm.rfind("http://", 0) == 0 && base_.rfind("http://", 0) == 0))
    return Error{Error::Code::PermissionDenied, fmt::format("{}: the token realm '{}' is not https", what, realm)};
  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
  if (!params["service"].empty()) url += "service=" + urlEncode(params["service"]) + "&";
  url += "scope=" + urlEncode(params["scope"].empty() ? "repository:" + ref_.repository + ":pull" : params["scope"]);
  auto r = get_(HttpGetRequest{url, {}, {}, std::chrono::seconds(30)});
  if (!r) return Error{r.error().code, fmt::format("{}: token from {}: {}", what, realm, r.error().message)};
  if (r->status != 200) return httpError(fmt::format("{}: token from {}", what, realm), r.value());
  auto doc = json::parse(r->body, nullptr, false);
  token_ = doc.is_object() ? doc.value("token", doc.value("access_token", std::string())) : std::string();
  if (token_.empty()) return Error{Error::Code::Protocol, fmt::format("{}: the token endpoint {} answered without a token", what, realm)};
  return Done{};
}

Result<Manifest> RegistryClient::manifest(const std::string& reference) {
  const std::string what = fmt::format("pull {}/{}:{} manifest {}", ref_.host, ref_.repository, ref_.reference, reference);
  auto r = get(HttpGetRequest{base_ + "/manifests/" + reference, {kAcceptManifests}, {}, std::chrono::seconds(60)}, what);
  if (!r) return r.error();
  if (r->status != 200) return httpError(what, r.value());
  Manifest m;
  m.bytes = std::move(r->body);
  auto type = r->headers.find("content-type");
  m.mediaType = type == r->headers.end() ? "" : type->second.substr(0, type->second.find(';'));
  auto doc = json::parse(m.bytes, nullptr, false);
  if (!doc.is_object()) return Error{Error::Code::Protocol, what + ": not JSON"};
  m.mediaType = doc.value("mediaType", m.mediaType);
  if (m.mediaType.empty()) m.mediaType = doc.contains("manifests") ? "application/vnd.oci.image.index.v1+json" : "application/vnd.oci.image.manifest.v1+json";
  return m;
}

Status RegistryClient::blob(const std::string& digest, const std::string& path) {
  const std::string what = fmt::format("pull {}/{} blob {}", ref_.host, ref_.repository, digest);
  auto r = get(HttpGetRequest{base_ + "/blobs/" + digest, {}, path, std::chrono::minutes(30)}, what);
  if (!r) return r.error();
  if (r->status != 200) return httpError(what, r.value());
  return Done{};
}

}  // namespace daemonlet::runtime::containerd
