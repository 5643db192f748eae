// Status and Result<T>: the error currency of every refzarr library.
//
// Shaped like std::expected so it can be swapped for it later. Library code never throws across its
// public interface; it returns a Status (or a Result<T>) whose message says what failed and where.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace refzarr {

/// What kind of failure a Status carries. "Not found" is usually expressed as an empty optional, not
/// as an error; kNotFound exists for interfaces where absence is exceptional (a missing source file).
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  ///< The caller asked for something malformed (bad key, bad option).
  kNotFound,         ///< A named thing (file, index, node) does not exist.
  kCorrupt,          ///< Input bytes contradict their format (truncated IFD, bad B-tree signature).
  kUnsupported,      ///< Valid input that refzarr cannot represent (a 128-bit float, an unknown codec).
  kIo,               ///< The operating system refused a read, write or open.
  kStale,            ///< A source changed after it was indexed; its bytes must not be served.
  kInternal,         ///< A bug or a library failure that fits no other code.
};

/// Returns "ok", "invalid argument", ... for messages.
std::string_view StatusCodeName(StatusCode code);

/// The outcome of an operation: ok, or a code with a human-readable message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  /// Returns a copy whose message is prefixed with `context: ` (e.g. the file or IFD being read).
  Status WithContext(std::string_view context) const;

  /// "ok" or the message.
  std::string ToString() const { return ok() ? "ok" : message_; }

  /// Marks a status as deliberately ignored.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status CorruptError(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status UnsupportedError(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIo, std::move(m)}; }
inline Status StaleError(std::string m) { return {StatusCode::kStale, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

/// Either a value of type T or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit, like std::expected
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result constructed from an ok Status");
  }

  bool ok() const { return v_.index() == 0; }
  /// The error; an ok Status when a value is held.
  Status status() const { return ok() ? Status() : std::get<1>(v_); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

namespace internal {
inline Status AsStatus(Status s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) { return r.status(); }
}  // namespace internal

}  // namespace refzarr

#define REFZARR_CONCAT_INNER(a, b) a##b
#define REFZARR_CONCAT(a, b) REFZARR_CONCAT_INNER(a, b)

/// Returns the Status of `expr` from the enclosing function when it is not ok.
#define RETURN_IF_ERROR(expr)                                              \
  do {                                                                     \
    ::refzarr::Status refzarr_status_ = ::refzarr::internal::AsStatus(expr); \
    if (!refzarr_status_.ok()) return refzarr_status_;                     \
  } while (0)

/// `ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result, or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  REFZARR_ASSIGN_OR_RETURN_IMPL(REFZARR_CONCAT(refzarr_result_, __LINE__), lhs, expr)
#define REFZARR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
