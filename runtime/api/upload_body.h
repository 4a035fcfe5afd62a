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
std::optional<SplitUpload> SplitLargeUpload(const std::string& raw,
                                            std::initializer_list<std::string_view> path,
                                            size_t min_bytes = 1 << 20);

}  // namespace forklet::api
