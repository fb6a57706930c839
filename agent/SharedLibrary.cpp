#include "agent/SharedLibrary.h"

#include <dlfcn.h>

namespace daemonlet::agent {

SharedLibrary::SharedLibrary(const char* soname, const char* package) : soname_(soname) {
  handle_ = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char* why = ::dlerror();
    throw std::runtime_error(std::string("cannot load ") + soname + " (Debian package " + package + "): " + (why ? why : "unknown error"));
  }
}

void* SharedLibrary::symbol(const char* name) const {
  void* address = ::dlsym(handle_, name);
  if (!address) throw std::runtime_error(soname_ + " has no " + name + ": too old a version");
  return address;
}

}  // namespace daemonlet::agent
