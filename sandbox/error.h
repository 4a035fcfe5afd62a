// Errors as values: the failed operation, its errno and a message a user can act on.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace forklet {

struct Error {
  std::string op;       // what was being done, e.g. "mkdir /sys/fs/cgroup/memory/x"
  int err = 0;          // errno, 0 when not a system error
  std::string message;  // extra detail; may be empty

  std::string ToString() const {
    std::string s = op;
    if (err != 0) s += ": " + std::string(std::strerror(err));
    if (!message.empty()) s += (s.empty() ? "" : ": ") + message;
    return s;
  }
};

inline Error SysError(std::string op, int e = errno) { return Error{std::move(op), e, {}}; }
inline Error MakeError(std::string op, std::string message) {
  return Error{std::move(op), 0, std::move(message)};
}

// Result<T>: a T or an Error. Result<void> carries only the error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error e) : v_(std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)), failed_(true) {}
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return e_; }

 private:
  Error e_;
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace forklet
