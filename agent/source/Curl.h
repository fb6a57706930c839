#pragma once
// libcurl, loaded when first needed (issue 15). Linking it made every agent pay for its
// dependency closure (gnutls, krb5, ldap, ssh2, p11-kit, nettle...: about 4 MiB of
// resident memory) even on the directory source, which never speaks HTTP. Only the http
// source and the CLI's API client load it. Packages must therefore depend on libcurl4
// explicitly: no linker-generated dependency names it.
#include <ctime>
#include <string>

#include <curl/curl.h>

namespace daemonlet::agent {

// The entry points daemonlet calls, resolved from libcurl.so.4.
struct Curl {
  decltype(&curl_global_init) global_init;
  decltype(&curl_global_cleanup) global_cleanup;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_cleanup) multi_cleanup;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_info_read) multi_info_read;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_multi_wakeup) multi_wakeup;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
  decltype(&curl_getdate) getdate;
};

// Loads libcurl on the first call (thread-safe) and returns the same table after.
// Throws std::runtime_error naming the library and the package when it cannot be loaded.
const Curl& curl();

}  // namespace daemonlet::agent
