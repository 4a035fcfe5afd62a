// A code upload's JSON body (CreateFunction's Code.ZipFile, UpdateFunctionCode's ZipFile) split
// without copying its zip: the base64 value is found in the raw bytes and decoded from there, and
// only the rest of the body (small) is parsed as a document. A parser would first build the
// base64 text as a string of its own, grown by doubling (up to twice its size again).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "sandbox/error.h"

namespace forklet::api {

// Where the string value at a member path ({"Code", "ZipFile"}) of a JSON object is: [first,
// second) of its characters, quotes excluded. nullopt when it is absent, not a string, holds an
// escape (then the slow path decides), or the bytes are not well-formed around it.
std::optional<std::pair<size_t, size_t>> FindStringMember(std::string_view json,
                                                          std::initializer_list<std::string_view> path);

struct SplitUpload {
  nlohmann::json body;   // the request without the zip (its value is "")
  std::string_view zip;  // the base64 text, a view into the request's body
};

// For a body of at least min_bytes with a plain string at path: the rest parsed and the zip's
// text located. nullopt: parse the whole body as usual (small, no such member, or the rest is
// not a JSON object, or names the member twice).
std::optional<SplitUpload> SplitLargeUpload(std::string_view raw,
                                            std::initializer_list<std::string_view> path,
                                            size_t min_bytes = 1 << 20);

// A request body spooled to disk (HttpRequest::body_file), mapped read-only while it is handled:
// its pages are the file's page cache, not the daemon's own memory, and DecodeZip drops from the
// mapping what it has decoded.
class SpooledBody {
 public:
  static Result<SpooledBody> Open(const std::string& path);
  SpooledBody(SpooledBody&& o) noexcept;
  SpooledBody& operator=(SpooledBody&&) = delete;
  ~SpooledBody();
  std::string_view text() const { return {static_cast<const char*>(data_), size_}; }
  // The base64 text zip (a view into text()) decoded in chunks; what is decoded leaves the mapping.
  Result<std::string> DecodeZip(std::string_view zip);

 private:
  SpooledBody(void* data, size_t size) : data_(data), size_(size) {}
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace forklet::api
