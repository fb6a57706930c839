#pragma once
// The sd-bus functions the agent calls (logind's shutdown hold, transient slices for task
// cgroups), loaded on first use (SharedLibrary.h says why): an agent that never talks to a
// system bus never maps libsystemd or its dependencies. The journal logger binds its one
// symbol itself (Logger::useJournal).
#include <systemd/sd-bus.h>

namespace daemonlet::agent {

struct Libsystemd {
  decltype(&sd_bus_open_system) bus_open_system;
  decltype(&sd_bus_match_signal) bus_match_signal;
  decltype(&sd_bus_get_property_trivial) bus_get_property_trivial;
  decltype(&sd_bus_error_free) bus_error_free;
  decltype(&sd_bus_call) bus_call;
  decltype(&sd_bus_call_method) bus_call_method;
  decltype(&sd_bus_message_new_method_call) bus_message_new_method_call;
  decltype(&sd_bus_message_append) bus_message_append;
  decltype(&sd_bus_message_open_container) bus_message_open_container;
  decltype(&sd_bus_message_close_container) bus_message_close_container;
  decltype(&sd_bus_message_read) bus_message_read;
  decltype(&sd_bus_message_unref) bus_message_unref;
  decltype(&sd_bus_get_fd) bus_get_fd;
  decltype(&sd_bus_process) bus_process;
  decltype(&sd_bus_slot_unref) bus_slot_unref;
  decltype(&sd_bus_flush_close_unref) bus_flush_close_unref;
};

// Loads libsystemd.so.0 the first time; throws std::runtime_error naming the library and
// its package when it is missing or lacks a symbol.
const Libsystemd& libsystemd();

}  // namespace daemonlet::agent
