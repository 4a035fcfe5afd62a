// A code upload's JSON body split without copying its zip.
#include "runtime/api/upload_body.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "runtime/registry/code_archive.h"

namespace forklet::api {
namespace {

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  // At an opening quote: past the closing one; *escaped tells whether it held a backslash.
  bool String(size_t* first, size_t* last, bool* escaped) {
    if (!Eat('"')) return false;
    *first = i_;
    *escaped = false;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '"') {
        *last = i_++;
        return true;
      }
      if (c == '\\') {
        *escaped = true;
        i_ += 2;
        continue;
      }
      ++i_;
    }
    return false;
  }

  // Any value, nested ones included, strings skipped as strings.
  bool SkipValue() {
    Ws();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '"') {
      size_t a, b;
      bool e;
      return String(&a, &b, &e);
    }
    if (c == '{' || c == '[') {
      size_t depth = 0;
      while (i_ < s_.size()) {
        char d = s_[i_];
        if (d == '"') {
          size_t a, b;
          bool e;
          if (!String(&a, &b, &e)) return false;
          continue;
        }
        if (d == '{' || d == '[') depth++;
        if (d == '}' || d == ']') {
          if (depth == 0) return false;
          if (--depth == 0) {
            ++i_;
            return true;
          }
        }
        ++i_;
      }
      return false;
    }
    while (i_ < s_.size() && !IsWs(s_[i_]) && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ']') ++i_;
    return true;
  }

  // In an object at path[level]: the span of the string at the end of the path.
  std::optional<std::pair<size_t, size_t>> Find(const std::string_view* path, size_t n) {
    Ws();
    if (!Eat('{')) return std::nullopt;
    Ws();
    if (Eat('}')) return std::nullopt;
    for (;;) {
      Ws();
      size_t k0, k1;
      bool escaped;
      if (!String(&k0, &k1, &escaped)) return std::nullopt;
      Ws();
      if (!Eat(':')) return std::nullopt;
      Ws();
      if (!escaped && s_.substr(k0, k1 - k0) == path[0]) {
        if (n == 1) {
          if (i_ >= s_.size() || s_[i_] != '"') return std::nullopt;
          size_t v0, v1;
          if (!String(&v0, &v1, &escaped) || escaped) return std::nullopt;
          return std::make_pair(v0, v1);
        }
        if (i_ < s_.size() && s_[i_] == '{') {
          if (auto found = Find(path + 1, n - 1)) return found;
          return std::nullopt;  // the first of a duplicated key: the slow path decides
        }
      }
      if (!SkipValue()) return std::nullopt;
      Ws();
      if (Eat(',')) continue;
      return std::nullopt;  // '}' (not found) or malformed
    }
  }

 private:
  void Ws() {
    while (i_ < s_.size() && IsWs(s_[i_])) ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::optional<std::pair<size_t, size_t>> FindStringMember(std::string_view json,
                                                          std::initializer_list<std::string_view> path) {
  if (path.size() == 0) return std::nullopt;
  return Scanner(json).Find(path.begin(), path.size());
}

std::optional<SplitUpload> SplitLargeUpload(std::string_view raw,
                                            std::initializer_list<std::string_view> path,
                                            size_t min_bytes) {
  if (raw.size() < min_bytes) return std::nullopt;
  auto span = FindStringMember(raw, path);
  if (!span) return std::nullopt;
  std::string rest;
  rest.reserve(raw.size() - (span->second - span->first));
  rest.append(raw, 0, span->first);
  rest.append(raw, span->second, std::string::npos);
  SplitUpload out;
  out.body = nlohmann::json::parse(rest, nullptr, false);
  if (out.body.is_discarded() || !out.body.is_object()) return std::nullopt;
  // The member must now be the empty string we left: a second one (a duplicated key) is not.
  const nlohmann::json* at = &out.body;
  for (std::string_view key : path) {
    if (!at->is_object()) return std::nullopt;
    auto it = at->find(std::string(key));
    if (it == at->end()) return std::nullopt;
    at = &*it;
  }
  if (!at->is_string() || !at->get_ref<const std::string&>().empty()) return std::nullopt;
  out.zip = raw.substr(span->first, span->second - span->first);
  return out;
}

Result<SpooledBody> SpooledBody::Open(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysError("open the spooled request body");
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return SysError("stat the spooled request body", e);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* data = size ? mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  int e = errno;
  close(fd);
  if (data == MAP_FAILED) return SysError("map the spooled request body", e);
  return SpooledBody(data, size);
}

SpooledBody::SpooledBody(SpooledBody&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

SpooledBody::~SpooledBody() {
  if (data_) munmap(data_, size_);
}

Result<std::string> SpooledBody::DecodeZip(std::string_view zip) {
  constexpr size_t kChunk = 4 << 20;  // base64 characters: a multiple of 4
  const long page = sysconf(_SC_PAGESIZE);
  std::string out;
  out.reserve(zip.size() / 4 * 3);
  const char* base = static_cast<const char*>(data_);
  for (size_t at = 0; at < zip.size(); at += kChunk) {
    auto part = registry::Base64Decode(zip.substr(at, kChunk));
    if (!part) return part.error();
    out += *part;
    // The pages read so far go back to the page cache only.
    const char* done = zip.data() + std::min(zip.size(), at + kChunk);
    size_t whole = static_cast<size_t>(done - base) / static_cast<size_t>(page) * static_cast<size_t>(page);
    if (whole > 0) madvise(data_, whole, MADV_DONTNEED);
  }
  return out;
}

}  // namespace forklet::api
