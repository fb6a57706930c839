#include "agent/host/Libsystemd.h"

#include "agent/SharedLibrary.h"

namespace daemonlet::agent {

const Libsystemd& libsystemd() {
  // Read-only once bound; C++ makes its first initialisation thread-safe.
  static const Libsystemd table = [] {
    const SharedLibrary library("libsystemd.so.0", "libsystemd0");
    Libsystemd s{};
    library.bind(s.bus_open_system, "sd_bus_open_system");
    library.bind(s.bus_match_signal, "sd_bus_match_signal");
    library.bind(s.bus_get_property_trivial, "sd_bus_get_property_trivial");
    library.bind(s.bus_error_free, "sd_bus_error_free");
    library.bind(s.bus_call, "sd_bus_call");
    library.bind(s.bus_call_method, "sd_bus_call_method");
    library.bind(s.bus_message_new_method_call, "sd_bus_message_new_method_call");
    library.bind(s.bus_message_append, "sd_bus_message_append");
    library.bind(s.bus_message_open_container, "sd_bus_message_open_container");
    library.bind(s.bus_message_close_container, "sd_bus_message_close_container");
    library.bind(s.bus_message_read, "sd_bus_message_read");
    library.bind(s.bus_message_unref, "sd_bus_message_unref");
    library.bind(s.bus_get_fd, "sd_bus_get_fd");
    library.bind(s.bus_process, "sd_bus_process");
    library.bind(s.bus_slot_unref, "sd_bus_slot_unref");
    library.bind(s.bus_flush_close_unref, "sd_bus_flush_close_unref");
    return s;
  }();
  return table;
}

}  // namespace daemonlet::agent
