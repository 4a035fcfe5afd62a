// An RFC 8259 recognizer: no values are built, so no number can overflow.
#include "runtime/api/json_text.h"

#include <cstdint>
#include <vector>

namespace forklet::api {
namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view t) : t_(t) {}

  bool Document() {
    SkipSpace();
    if (!Value()) return false;
    SkipSpace();
    return i_ == t_.size();
  }

 private:
  enum Frame : char { kArray = '[', kObject = '{' };

  bool AtEnd() const { return i_ >= t_.size(); }
  char Peek() const { return AtEnd() ? '\0' : t_[i_]; }
  void SkipSpace() {
    while (!AtEnd() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  bool Literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  bool Digits() {
    size_t start = i_;
    while (!AtEnd() && t_[i_] >= '0' && t_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool Number() {
    if (Peek() == '-') ++i_;
    if (Peek() == '0') ++i_;
    else if (!Digits()) return false;
    if (Peek() == '.') {
      ++i_;
      if (!Digits()) return false;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++i_;
      if (Peek() == '+' || Peek() == '-') ++i_;
      if (!Digits()) return false;
    }
    return true;
  }
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool Utf8() {  // one multi-byte sequence starting at i_
    auto b = static_cast<unsigned char>(t_[i_]);
    size_t n;
    uint32_t cp;
    if (b >= 0xC2 && b <= 0xDF) n = 1, cp = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) n = 2, cp = b & 0x0F;
    else if (b >= 0xF0 && b <= 0xF4) n = 3, cp = b & 0x07;
    else return false;
    if (i_ + n >= t_.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      auto c = static_cast<unsigned char>(t_[i_ + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    i_ += n + 1;
    return true;
  }
  bool String() {
    if (Peek() != '"') return false;
    ++i_;
    for (;;) {
      if (AtEnd()) return false;
      auto c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++i_;
        char e = Peek();
        if (e == 'u') {
          if (i_ + 4 >= t_.size()) return false;
          for (size_t k = 1; k <= 4; ++k)
            if (Hex(t_[i_ + k]) < 0) return false;
          i_ += 5;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                   e == 'r' || e == 't') {
          ++i_;
        } else {
          return false;
        }
      } else if (c < 0x80) {
        ++i_;
      } else if (!Utf8()) {
        return false;
      }
    }
  }
  // A value; containers are tracked on an explicit stack.
  bool Value() {
    std::vector<Frame> stack;
    for (;;) {
      SkipSpace();
      char c = Peek();
      bool opened = false;
      if (c == '{' || c == '[') {
        ++i_;
        stack.push_back(static_cast<Frame>(c));
        SkipSpace();
        char close = c == '{' ? '}' : ']';
        if (Peek() == close) {
          ++i_;
          stack.pop_back();
        } else {
          opened = true;
          if (c == '{') {  // first member's key
            if (!String()) return false;
            SkipSpace();
            if (Peek() != ':') return false;
            ++i_;
          }
        }
      } else if (c == '"') {
        if (!String()) return false;
      } else if (c == 't') {
        if (!Literal("true")) return false;
      } else if (c == 'f') {
        if (!Literal("false")) return false;
      } else if (c == 'n') {
        if (!Literal("null")) return false;
      } else {
        if (!Number()) return false;
      }
      if (opened) continue;  // its first element follows
      // After a value: close containers or move to the next element.
      for (;;) {
        if (stack.empty()) return true;
        SkipSpace();
        char close = stack.back() == kObject ? '}' : ']';
        if (Peek() == close) {
          ++i_;
          stack.pop_back();
          continue;
        }
        if (Peek() != ',') return false;
        ++i_;
        if (stack.back() == kObject) {
          SkipSpace();
          if (!String()) return false;
          SkipSpace();
          if (Peek() != ':') return false;
          ++i_;
        }
        break;
      }
    }
  }

  std::string_view t_;
  size_t i_ = 0;
};

}  // namespace

bool IsJsonText(std::string_view text) { return Scanner(text).Document(); }

}  // namespace forklet::api
