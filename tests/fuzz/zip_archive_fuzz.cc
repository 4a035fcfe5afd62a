// Fuzzes registry::UnpackZip, which unpacks a deployment zip from any client: whatever the bytes,
// it returns an error or unpacks only regular files and directories inside the destination.
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "runtime/registry/code_archive.h"
#include "tests/fuzz/fuzz_util.h"

namespace forklet::fuzz {
const char* const kTarget = "zip_archive_fuzz";
}  // namespace forklet::fuzz

namespace {
using forklet::fuzz::Fail;
using forklet::fuzz::TempDir;
namespace fs = std::filesystem;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string root = TempDir("zip");
  std::string dest = root + "/unpacked";
  fs::create_directory(dest);
  forklet::registry::ArchiveLimits limits;
  limits.max_unpacked_bytes = 16 << 20;
  limits.max_entries = 1000;
  auto r = forklet::registry::UnpackZip(
      std::string_view(reinterpret_cast<const char*>(data), size), dest, limits);
  // Nothing outside dest, nothing but files and directories inside it.
  for (const auto& e : fs::directory_iterator(root))
    if (e.path() != dest) Fail("wrote outside the destination: " + e.path().string());
  for (const auto& e : fs::recursive_directory_iterator(dest)) {
    auto st = e.symlink_status();
    if (!fs::is_regular_file(st) && !fs::is_directory(st))
      Fail("unpacked something that is neither file nor directory: " + e.path().string());
  }
  if (r && !fs::is_directory(dest)) Fail("the destination is gone");
  fs::remove_all(dest);
  return 0;
}
