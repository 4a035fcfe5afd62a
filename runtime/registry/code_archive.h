// Unpacking an untrusted deployment zip into a directory, safely and within limits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sandbox/error.h"

namespace forklet::registry {

struct ArchiveLimits {
  uint64_t max_zip_bytes = 50ull << 20;        // Lambda: 50 MB zipped (direct upload)
  uint64_t max_unpacked_bytes = 250ull << 20;  // Lambda: 250 MB unzipped
  uint32_t max_entries = 20000;
};

struct UnpackedCode {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

// Extracts a zip held in memory into dest_dir (which must exist and be empty). Rejects absolute
// paths, ".." components, symlink entries, entries that are neither file nor directory, and
// archives over the limits; on any error dest_dir's content is unspecified (the caller removes
// it). Files become 0644 (0755 when the zip marks them executable), directories 0755.
Result<UnpackedCode> UnpackZip(std::string_view zip, const std::string& dest_dir,
                               const ArchiveLimits& limits = {});

// Base64 of the SHA-256 of data (Lambda's CodeSha256).
std::string Sha256Base64(std::string_view data);

std::string Base64Encode(std::string_view data);
// Rejects malformed input.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace forklet::registry
