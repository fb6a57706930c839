#include "agent/Guarded.h"

namespace daemonlet::agent {

std::string describeException(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

}  // namespace daemonlet::agent
