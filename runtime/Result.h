#pragma once
// Errors that cross the runtime boundary are values: a caller cannot forget that a
// container call can fail.
#include <string>
#include <utility>
#include <variant>

namespace daemonlet::runtime {

struct Error {
  enum class Code {
    Unavailable,       // engine not running / socket missing or refusing
    PermissionDenied,  // socket exists but we may not use it
    NotFound,          // no such container or image
    Conflict,          // name in use, container not in the right state
    Engine,            // the engine answered with an error (5xx, or an error in a stream)
    Timeout,           // the deadline passed
    Protocol,          // the answer could not be understood
    Cancelled,         // shutdown
    Unsupported,       // engine too old, feature absent
    PortInUse,         // a host port to publish is already taken
  };
  Code code = Code::Engine;
  std::string message;
};

const char* toString(Error::Code code);

template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose, like expected
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Done {};
using Status = Result<Done>;

}  // namespace daemonlet::runtime
