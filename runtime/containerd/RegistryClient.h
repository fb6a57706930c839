#pragma once
// Internal to runtime/containerd: the registry API v2 as a pull reads it. Manifests by
// tag or digest and blobs by digest; a 401 with a `WWW-Authenticate: Bearer` challenge
// is answered with a token from the challenge's realm (anonymous pull), kept for the
// pull's further requests. Tokens never appear in errors.
#include <set>
#include <string>

#include "runtime/containerd/RegistryHttp.h"

namespace daemonlet::runtime::containerd {

// "127.0.0.1:5000/dl/busybox:1" -> host 127.0.0.1:5000, repository dl/busybox, reference 1.
// docker.io is served by registry-1.docker.io.
struct RegistryReference {
  std::string host;
  std::string repository;
  std::string reference;  // a tag, or a digest
};
Result<RegistryReference> parseRegistryReference(const std::string& normalizedName);

struct Manifest {
  std::string mediaType;
  std::string digest;  // of `bytes`
  std::string bytes;
};

class RegistryClient {
 public:
  // `insecureHosts`: hosts (host:port) spoken to over plain http; every other one is https.
  RegistryClient(HttpGet get, RegistryReference ref, const std::set<std::string>& insecureHosts);

  // By tag or digest, any of the manifest and index media types we understand.
  Result<Manifest> manifest(const std::string& reference);
  // The blob into `path`; the caller (containerd) checks its digest.
  Status blob(const std::string& digest, const std::string& path);

 private:
  Result<HttpGetResponse> get(HttpGetRequest request, const std::string& what);
  Status authorize(const std::string& challenge, const std::string& what);

  HttpGet get_;
  RegistryReference ref_;
  std::string base_;  // scheme://host/v2/repository
  std::string token_;
};

}  // namespace daemonlet::runtime::containerd
