#include "agent/source/Curl.h"

#include <cstdlib>

#include "agent/SharedLibrary.h"

namespace daemonlet::agent {

namespace {

Curl load() {
  // libcurl4 pulls in gnutls (through librtmp and libldap) without using it for its own
  // TLS, which is OpenSSL; gnutls's load-time initialisation alone maps p11-kit and its
  // modules. Neither rtmp nor ldap is a protocol daemonlet enables.
  ::setenv("GNUTLS_NO_IMPLICIT_INIT", "1", /*overwrite=*/0);
  const SharedLibrary library("libcurl.so.4", "libcurl4");
  Curl c{};
  library.bind(c.global_init, "curl_global_init");
  library.bind(c.global_cleanup, "curl_global_cleanup");
  library.bind(c.easy_init, "curl_easy_init");
  library.bind(c.easy_cleanup, "curl_easy_cleanup");
  library.bind(c.easy_setopt, "curl_easy_setopt");
  library.bind(c.easy_getinfo, "curl_easy_getinfo");
  library.bind(c.easy_perform, "curl_easy_perform");
  library.bind(c.easy_strerror, "curl_easy_strerror");
  library.bind(c.multi_init, "curl_multi_init");
  library.bind(c.multi_cleanup, "curl_multi_cleanup");
  library.bind(c.multi_add_handle, "curl_multi_add_handle");
  library.bind(c.multi_remove_handle, "curl_multi_remove_handle");
  library.bind(c.multi_perform, "curl_multi_perform");
  library.bind(c.multi_info_read, "curl_multi_info_read");
  library.bind(c.multi_poll, "curl_multi_poll");
  library.bind(c.multi_wakeup, "curl_multi_wakeup");
  library.bind(c.slist_append, "curl_slist_append");
  library.bind(c.slist_free_all, "curl_slist_free_all");
  library.bind(c.getdate, "curl_getdate");
  // Once, before any thread uses it (curl_global_init is not thread-safe before 7.84).
  c.global_init(CURL_GLOBAL_DEFAULT);
  return c;
}

}  // namespace

const Curl& curl() {
  static const Curl table = load();
  return table;
}

}  // namespace daemonlet::agent
