#pragma once
// A shared library opened at run time, for what only some agents use (issue 15: libcurl
// for the http source, libsystemd's sd-bus where logind runs). Linking them made every
// agent map their whole dependency closure. Never closed: their atexit handlers and
// thread-local state outlive any owner we could give them.
#include <stdexcept>
#include <string>

namespace daemonlet::agent {

class SharedLibrary {
 public:
  // Throws std::runtime_error naming the library and the Debian package that ships it.
  SharedLibrary(const char* soname, const char* package);

  // Sets `slot` to the library's `name`; throws when it has none.
  template <class Function>
  void bind(Function*& slot, const char* name) const {
    slot = reinterpret_cast<Function*>(symbol(name));
  }

 private:
  void* symbol(const char* name) const;

  std::string soname_;
  void* handle_ = nullptr;
};

}  // namespace daemonlet::agent
