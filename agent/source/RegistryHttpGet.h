#pragma once
// The containerd adapter's registry HTTP (runtime/containerd/RegistryHttp.h) over
// libcurl, loaded on the first pull. Blocking: the adapter calls it on its worker threads.
// TLS verification stays on; redirects are followed (blob storage), and libcurl sends
// the Authorization header to the original host only.
#include "runtime/containerd/RegistryHttp.h"

namespace daemonlet::agent {

runtime::HttpGet registryHttpGet();

}  // namespace daemonlet::agent
