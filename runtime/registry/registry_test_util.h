// Test helpers for the registry: temp dirs and zips built in memory with libzip.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <zip.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace forklet::registry::testing {

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string t = "/tmp/forklet-registry-test-XXXXXX";
    if (mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode;
}

struct ZipEntry {
  std::string name;
  std::string data;
  uint32_t unix_mode = S_IFREG | 0644;  // external attributes, high 16 bits
  uint64_t zeros = 0;                   // when non-zero: the content is this many zero bytes
};

namespace internal {

struct Zeros {
  uint64_t size;
  uint64_t pos = 0;
};

// A libzip source of n zero bytes, so a huge entry needs no huge buffer.
inline zip_int64_t ZerosCallback(void* ud, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
  auto* z = static_cast<Zeros*>(ud);
  switch (cmd) {
    case ZIP_SOURCE_OPEN:
      z->pos = 0;
      return 0;
    case ZIP_SOURCE_READ: {
      zip_uint64_t n = std::min<zip_uint64_t>(len, z->size - z->pos);
      memset(data, 0, n);
      z->pos += n;
      return static_cast<zip_int64_t>(n);
    }
    case ZIP_SOURCE_CLOSE:
      return 0;
    case ZIP_SOURCE_STAT: {
      auto* st = static_cast<zip_stat_t*>(data);
      zip_stat_init(st);
      st->size = z->size;
      st->valid |= ZIP_STAT_SIZE;
      return sizeof(*st);
    }
    case ZIP_SOURCE_ERROR: {
      int* e = static_cast<int*>(data);
      e[0] = e[1] = 0;
      return 2 * sizeof(int);
    }
    case ZIP_SOURCE_FREE:
      delete z;
      return 0;
    case ZIP_SOURCE_SUPPORTS:
      return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                            ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
    default:
      return -1;
  }
}

}  // namespace internal

// Builds a zip in memory. Names are stored as given (libzip does not sanitize them), so tests can
// build hostile archives. A name ending in '/' becomes a directory entry.
inline std::string MakeZip(const std::vector<ZipEntry>& entries) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* buf = zip_source_buffer_create(nullptr, 0, 0, &err);
  zip_t* za = zip_open_from_source(buf, ZIP_TRUNCATE, &err);
  if (za == nullptr) throw std::runtime_error("zip_open_from_source failed");
  zip_source_keep(buf);
  for (const ZipEntry& e : entries) {
    zip_int64_t idx;
    bool dir = !e.name.empty() && e.name.back() == '/';
    uint32_t mode = dir && (e.unix_mode & S_IFMT) == S_IFREG ? (S_IFDIR | 0755) : e.unix_mode;
    if (dir) {
      idx = zip_dir_add(za, e.name.c_str(), ZIP_FL_ENC_UTF_8);
    } else {
      zip_source_t* s;
      if (e.zeros > 0) {
        s = zip_source_function(za, internal::ZerosCallback, new internal::Zeros{e.zeros});
      } else {
        s = zip_source_buffer(za, e.data.data(), e.data.size(), 0);  // read at zip_close
      }
      idx = zip_file_add(za, e.name.c_str(), s, ZIP_FL_ENC_UTF_8);
    }
    if (idx < 0) throw std::runtime_error(std::string("zip add failed: ") + zip_strerror(za));
    zip_file_set_external_attributes(za, static_cast<zip_uint64_t>(idx), 0, ZIP_OPSYS_UNIX,
                                     mode << 16);
  }
  if (zip_close(za) != 0) throw std::runtime_error("zip_close failed");
  std::string out;
  if (zip_source_open(buf) == 0) {
    zip_source_seek(buf, 0, SEEK_END);
    zip_int64_t size = zip_source_tell(buf);
    zip_source_seek(buf, 0, SEEK_SET);
    out.resize(static_cast<size_t>(size));
    zip_source_read(buf, out.data(), static_cast<zip_uint64_t>(size));
    zip_source_close(buf);
  }
  zip_source_free(buf);
  return out;
}

inline std::string SimpleZip(const std::string& body = "def handler(event, context):\n    return 1\n") {
  return MakeZip({{"app.py", body}});
}

}  // namespace forklet::registry::testing
