// Unpacking an untrusted deployment zip into a directory, safely and within limits.
#include "runtime/registry/code_archive.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <array>
#include <cerrno>
#include <memory>
#include <vector>

#include "runtime/registry/durable_fs.h"

namespace forklet::registry {
namespace {

constexpr const char* kInvalid = "InvalidParameterValueException";
constexpr const char* kUnzipFailed =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

Error Invalid(std::string message) { return Error{kInvalid, 0, std::move(message)}; }
constexpr size_t kMaxNameComponent = 255;  // NAME_MAX of Linux filesystems
constexpr size_t kMaxPath = 4096;          // PATH_MAX
Error Unzip(const std::string& detail) { return Invalid(std::string(kUnzipFailed) + " (" + detail + ")"); }
Error TooBigUnzipped(uint64_t limit) {
  return Invalid("Unzipped size must be smaller than " + std::to_string(limit) + " bytes");
}

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFclose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

struct Entry {
  zip_uint64_t index;
  std::string name;
  std::vector<std::string> parts;  // path components below dest, all safe
  bool dir;
  bool executable;
};

// Splits an entry name into components, refusing anything that could land outside dest.
// "." and empty components are dropped ("./a//b" is "a/b"); ".." is refused, not resolved.
Result<std::vector<std::string>> SafeParts(const std::string& name) {
  if (name.empty()) return Unzip("an entry has an empty name");
  if (name[0] == '/') return Unzip("entry '" + name + "' has an absolute path");
  if (name.find('\\') != std::string::npos)
    return Unzip("entry '" + name + "' contains a backslash; create the zip with '/' as the separator");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    if (part == "..") return Unzip("entry '" + name + "' contains a '..' path component");
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = end + 1;
  }
  return parts;
}

// Reads the entry table and checks every entry before anything is written.
Result<std::vector<Entry>> PlanEntries(zip_t* za, const ArchiveLimits& limits) {
  zip_int64_t n = zip_get_num_entries(za, 0);
  if (n <= 0) return Invalid("Uploaded file must be a non-empty zip");
  if (static_cast<uint64_t>(n) > limits.max_entries)
    return Invalid("The zip has " + std::to_string(n) + " entries; at most " +
                   std::to_string(limits.max_entries) + " are allowed");
  std::vector<Entry> entries;
  entries.reserve(static_cast<size_t>(n));
  uint64_t declared = 0;
  for (zip_uint64_t i = 0; i < static_cast<zip_uint64_t>(n); ++i) {
    const char* raw = zip_get_name(za, i, 0);
    if (raw == nullptr) return Unzip(zip_strerror(za));
    Entry e{i, raw, {}, false, false};
    auto parts = SafeParts(e.name);
    if (!parts) return parts.error();
    e.parts = std::move(parts.value());
    // Names the filesystem cannot hold are the zip's fault (400), found before anything is written.
    if (e.name.size() >= kMaxPath)
      return Invalid("Could not unzip uploaded file: entry '" + e.name + "' has a path longer than " +
                     std::to_string(kMaxPath - 1) + " bytes");
    for (const std::string& part : e.parts)
      if (part.size() > kMaxNameComponent)
        return Invalid("Could not unzip uploaded file: entry '" + e.name + "' has a file name " +
                       "longer than " + std::to_string(kMaxNameComponent) + " bytes");
    e.dir = e.name.back() == '/';

    zip_uint8_t opsys = 0;
    zip_uint32_t attr = 0;
    if (zip_file_get_external_attributes(za, i, 0, &opsys, &attr) != 0) return Unzip(zip_strerror(za));
    if (opsys == ZIP_OPSYS_UNIX) {
      mode_t mode = attr >> 16;
      mode_t type = mode & S_IFMT;
      if (type == S_IFLNK)
        return Invalid("Could not unzip uploaded file: entry '" + e.name +
                       "' is a symbolic link, which forklet does not accept");
      if (type == S_IFDIR) e.dir = true;
      else if (type != 0 && type != S_IFREG)
        return Invalid("Could not unzip uploaded file: entry '" + e.name +
                       "' is neither a regular file nor a directory");
      e.executable = (mode & 0111) != 0;
    } else if (attr & 0x10) {  // MS-DOS directory attribute
      e.dir = true;
    }
    if (e.parts.empty()) {
      if (e.dir) continue;  // "./": dest itself
      return Unzip("entry '" + e.name + "' has no file name");
    }

    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, i, 0, &st) != 0) return Unzip(zip_strerror(za));
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
      return Unzip("entry '" + e.name + "' is encrypted");
    if (!e.dir && (st.valid & ZIP_STAT_SIZE)) {
      // A header may lie; this only refuses honest oversize archives early. Extraction counts.
      if (st.size > limits.max_unpacked_bytes || declared + st.size > limits.max_unpacked_bytes)
        return TooBigUnzipped(limits.max_unpacked_bytes);
      declared += st.size;
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

// Opens (creating as needed) dest/parts[0]/.../parts[count-1], one component at a time relative
// to the parent's fd, never following a symlink.
Result<UniqueFd> OpenDirs(int dest_fd, const std::vector<std::string>& parts, size_t count,
                          const std::string& entry) {
  UniqueFd cur(::fcntl(dest_fd, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return SysError("dup");
  for (size_t i = 0; i < count; ++i) {
    const char* part = parts[i].c_str();
    bool created = ::mkdirat(cur.get(), part, 0700) == 0;
    if (!created && errno != EEXIST) return StorageError("mkdir for entry '" + entry + "'", errno);
    UniqueFd next(::openat(cur.get(), part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      if (errno == ENOTDIR || errno == ELOOP)
        return Unzip("entry '" + entry + "' needs '" + parts[i] + "' to be a directory, but it is a file");
      return StorageError("open directory for entry '" + entry + "'", errno);
    }
    if (created && ::fchmod(next.get(), 0755) != 0) return StorageError("chmod directory", errno);
    cur = std::move(next);
  }
  return cur;
}

// Copies one file entry into parent_fd/name, adding what it writes to *total and refusing to
// pass the limit whatever the headers said.
Status ExtractFile(zip_t* za, const Entry& e, int parent_fd, uint64_t limit, uint64_t* total) {
  std::unique_ptr<zip_file_t, ZipFclose> zf(zip_fopen_index(za, e.index, 0));
  if (!zf) return Unzip("entry '" + e.name + "': " + zip_strerror(za));
  const std::string& base = e.parts.back();
  UniqueFd fd(::openat(parent_fd, base.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    if (errno == EEXIST) return Unzip("entry '" + e.name + "' appears more than once");
    return StorageError("create file for entry '" + e.name + "'", errno);
  }
  static thread_local std::array<char, 1 << 16> buf;
  for (;;) {
    zip_int64_t n = zip_fread(zf.get(), buf.data(), buf.size());
    if (n < 0) return Unzip("entry '" + e.name + "': " + zip_file_strerror(zf.get()));
    if (n == 0) break;
    *total += static_cast<uint64_t>(n);
    if (*total > limit) return TooBigUnzipped(limit);
    if (auto s = WriteAll(fd.get(), std::string_view(buf.data(), static_cast<size_t>(n)), "entry '" + e.name + "'"); !s)
      return s;
  }
  if (::fchmod(fd.get(), e.executable ? 0755 : 0644) != 0)
    return StorageError("chmod entry '" + e.name + "'", errno);
  if (int err = fd.Close(); err != 0) return StorageError("close entry '" + e.name + "'", err);
  return {};
}

}  // namespace

Result<UnpackedCode> UnpackZip(std::string_view zip, const std::string& dest_dir,
                               const ArchiveLimits& limits) {
  if (zip.size() > limits.max_zip_bytes)
    return Error{"RequestEntityTooLargeException", 0,
                 "Zipped size must be smaller than " + std::to_string(limits.max_zip_bytes) +
                     " bytes (got " + std::to_string(zip.size()) + ")"};
  if (zip.empty()) return Invalid("Uploaded file must be a non-empty zip");

  zip_error_t zerr;
  zip_error_init(&zerr);
  zip_source_t* src = zip_source_buffer_create(zip.data(), zip.size(), 0, &zerr);
  if (src == nullptr) {
    std::string m = zip_error_strerror(&zerr);
    zip_error_fini(&zerr);
    return Unzip(m);
  }
  zip_t* raw = zip_open_from_source(src, ZIP_RDONLY, &zerr);
  if (raw == nullptr) {
    zip_source_free(src);
    std::string m = zip_error_strerror(&zerr);
    zip_error_fini(&zerr);
    return Unzip(m);
  }
  zip_error_fini(&zerr);
  std::unique_ptr<zip_t, ZipDiscard> za(raw);

  auto plan = PlanEntries(za.get(), limits);
  if (!plan) return plan.error();

  UniqueFd dest(::open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dest.valid()) return SysError("open " + dest_dir);

  UnpackedCode out;
  // Entries of one directory are usually adjacent; keep the last parent open.
  std::vector<std::string> cached_parent;
  UniqueFd cached_fd;
  for (const Entry& e : plan.value()) {
    size_t depth = e.dir ? e.parts.size() : e.parts.size() - 1;
    std::vector<std::string> parent(e.parts.begin(), e.parts.begin() + static_cast<long>(depth));
    if (!cached_fd.valid() || parent != cached_parent) {
      auto fd = OpenDirs(dest.get(), e.parts, depth, e.name);
      if (!fd) return fd.error();
      cached_fd = std::move(fd.value());
      cached_parent = std::move(parent);
    }
    if (e.dir) continue;
    if (auto s = ExtractFile(za.get(), e, cached_fd.get(), limits.max_unpacked_bytes, &out.bytes); !s)
      return s.error();
    ++out.files;
  }
  return out;
}

std::string Sha256Base64(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string Base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8) |
                 static_cast<uint8_t>(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(data[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(data[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  static const auto kValues = [] {
    std::array<int8_t, 256> t;
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    return t;
  }();
  auto bad = [](const std::string& why) { return Invalid("invalid base64: " + why); };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t symbols = 0, padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    int8_t v = kValues[static_cast<uint8_t>(c)];
    if (v < 0) return bad("unexpected character at offset " + std::to_string(i));
    if (padding > 0) return bad("data after '=' padding at offset " + std::to_string(i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    ++symbols;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Padding is optional, but when present it must complete the last group of four.
  if (symbols % 4 == 1) return bad("truncated input");
  if (padding > 2 || (padding > 0 && (symbols + padding) % 4 != 0))
    return bad("wrong amount of '=' padding");
  return out;
}

}  // namespace forklet::registry
