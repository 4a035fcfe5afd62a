// Packing a function directory into a deployment zip in memory (libzip).
#include "tools/zip_dir.h"

#include <sys/stat.h>
#include <zip.h>

#include <filesystem>
#include <memory>

namespace forklet::tools {
namespace fs = std::filesystem;

Result<std::string> ZipDirectory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return MakeError("deploy", dir + " is not a directory");
  zip_error_t zerr;
  zip_error_init(&zerr);
  zip_source_t* src = zip_source_buffer_create(nullptr, 0, 0, &zerr);
  if (!src) return MakeError("zip", zip_error_strerror(&zerr));
  zip_source_keep(src);
  zip_t* za = zip_open_from_source(src, ZIP_TRUNCATE, &zerr);
  if (!za) {
    zip_source_free(src);
    return MakeError("zip", zip_error_strerror(&zerr));
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file() || it->is_symlink()) continue;
    std::string rel = fs::relative(it->path(), dir).generic_string();
    if (rel.find("__pycache__") != std::string::npos) continue;
    zip_source_t* fsrc = zip_source_file(za, it->path().c_str(), 0, -1);
    zip_int64_t idx = fsrc ? zip_file_add(za, rel.c_str(), fsrc, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
      if (fsrc) zip_source_free(fsrc);
      std::string msg = zip_strerror(za);
      zip_discard(za);
      zip_source_free(src);
      return MakeError("zip " + rel, msg);
    }
    struct stat st;
    if (stat(it->path().c_str(), &st) == 0)
      zip_file_set_external_attributes(za, static_cast<zip_uint64_t>(idx), 0, ZIP_OPSYS_UNIX,
                                       static_cast<zip_uint32_t>(st.st_mode & 0xffff) << 16);
  }
  if (ec) {
    zip_discard(za);
    zip_source_free(src);
    return SysError("read " + dir, ec.value());
  }
  if (zip_close(za) != 0) {
    std::string msg = zip_strerror(za);
    zip_discard(za);
    zip_source_free(src);
    return MakeError("zip", msg);
  }
  std::string out;
  zip_stat_t st;
  if (zip_source_stat(src, &st) == 0 && zip_source_open(src) == 0) {
    out.resize(st.size);
    zip_source_read(src, out.data(), st.size);
    zip_source_close(src);
  }
  zip_source_free(src);
  return out;
}

}  // namespace forklet::tools
