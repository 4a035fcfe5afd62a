// Tests of code_archive.h: Unpacking an untrusted deployment zip into a directory, safely and ... (see code_archive.h).
#include "runtime/registry/code_archive.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "runtime/registry/registry_test_util.h"

namespace forklet::registry {
namespace {

using testing::MakeZip;
using testing::ModeOf;
using testing::ReadFile;
using testing::TempDir;
using testing::ZipEntry;

constexpr const char* kInvalid = "InvalidParameterValueException";

uint64_t BytesBelow(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

class UnpackTest : public ::testing::Test {
 protected:
  // A fresh, empty destination inside the temp dir, so escapes would land in tmp_.
  std::string Dest() {
    std::string d = tmp_ / ("dest" + std::to_string(++n_));
    std::filesystem::create_directory(d);
    return d;
  }
  // Expects the zip to be refused with op and a message containing part.
  void ExpectRejected(const std::string& zip, const std::string& op, const std::string& part,
                      const ArchiveLimits& limits = {}) {
    std::string d = Dest();
    auto r = UnpackZip(zip, d, limits);
    ASSERT_FALSE(r) << "accepted; expected " << part;
    EXPECT_EQ(r.error().op, op) << r.error().ToString();
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
  }
  TempDir tmp_;
  int n_ = 0;
};

TEST_F(UnpackTest, NestedDirectoriesAndModes) {
  mode_t old = umask(077);  // a strict umask must not leak into the code's modes
  std::string zip = MakeZip({
      {"app.py", "def handler(e, c):\n    return 1\n"},
      {"lib/", ""},
      {"lib/pkg/__init__.py", ""},
      {"lib/pkg/deep/er/mod.py", "X = 1\n"},  // parents without directory entries
      {"bin/tool", "#!/bin/sh\necho hi\n", S_IFREG | 0755},
      {"./data//notes.txt", "n"},
      {"private.txt", "p", S_IFREG | 0600},
  });
  std::string d = Dest();
  auto r = UnpackZip(zip, d);
  umask(old);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->files, 6u);
  EXPECT_EQ(r->bytes, 32u + 0 + 6 + 18 + 1 + 1);
  EXPECT_EQ(ReadFile(d + "/app.py"), "def handler(e, c):\n    return 1\n");
  EXPECT_EQ(ReadFile(d + "/lib/pkg/deep/er/mod.py"), "X = 1\n");
  EXPECT_EQ(ReadFile(d + "/data/notes.txt"), "n");
  EXPECT_EQ(ModeOf(d + "/app.py"), S_IFREG | 0644);
  EXPECT_EQ(ModeOf(d + "/private.txt"), S_IFREG | 0644);  // the sandbox user must read it
  EXPECT_EQ(ModeOf(d + "/bin/tool"), S_IFREG | 0755);
  EXPECT_EQ(ModeOf(d + "/lib"), S_IFDIR | 0755);
  EXPECT_EQ(ModeOf(d + "/lib/pkg/deep/er"), S_IFDIR | 0755);
  EXPECT_EQ(ModeOf(d + "/bin"), S_IFDIR | 0755);
}

TEST_F(UnpackTest, ZipMadeByTheZipTool) {
  if (system("command -v zip >/dev/null 2>&1") != 0) GTEST_SKIP() << "zip(1) not installed";
  std::string src = tmp_ / "src";
  std::filesystem::create_directories(src + "/pkg/sub");
  { std::ofstream(src + "/lambda_function.py") << "def lambda_handler(e, c): pass\n"; }
  { std::ofstream(src + "/pkg/sub/m.py") << "Y = 2\n"; }
  { std::ofstream(src + "/run.sh") << "#!/bin/sh\n"; }
  chmod((src + "/run.sh").c_str(), 0755);
  std::string cmd = "cd " + src + " && zip -qr ../code.zip . >/dev/null";
  ASSERT_EQ(system(cmd.c_str()), 0);
  std::string d = Dest();
  auto r = UnpackZip(ReadFile(tmp_ / "code.zip"), d);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->files, 3u);
  EXPECT_EQ(ReadFile(d + "/pkg/sub/m.py"), "Y = 2\n");
  EXPECT_EQ(ModeOf(d + "/run.sh"), S_IFREG | 0755);
  EXPECT_EQ(ModeOf(d + "/lambda_function.py"), S_IFREG | 0644);
}

TEST_F(UnpackTest, RefusesPathsOutsideDest) {
  ExpectRejected(MakeZip({{"../evil", "x"}}), kInvalid, "'..'");
  ExpectRejected(MakeZip({{"ok/../../evil", "x"}}), kInvalid, "'..'");
  ExpectRejected(MakeZip({{"a/b/../c", "x"}}), kInvalid, "'..'");  // refused even when it stays inside
  ExpectRejected(MakeZip({{"/abs", "x"}}), kInvalid, "absolute");
  ExpectRejected(MakeZip({{"/tmp/evil", "x"}}), kInvalid, "absolute");
  ExpectRejected(MakeZip({{"..\\evil", "x"}}), kInvalid, "backslash");
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "evil"));
  EXPECT_FALSE(std::filesystem::exists("/abs"));
}

TEST_F(UnpackTest, RefusesSymlinksAndSpecialFiles) {
  ExpectRejected(MakeZip({{"link", "/etc/passwd", S_IFLNK | 0777}}), kInvalid, "symbolic link");
  // The classic escape: a symlinked directory, then a file written through it.
  ExpectRejected(MakeZip({{"dir", "/tmp", S_IFLNK | 0777}, {"dir/evil", "x"}}), kInvalid,
                 "symbolic link");
  ExpectRejected(MakeZip({{"fifo", "", S_IFIFO | 0644}}), kInvalid, "neither a regular file");
  ExpectRejected(MakeZip({{"dev", "", S_IFCHR | 0644}}), kInvalid, "neither a regular file");
}

TEST_F(UnpackTest, RefusesGarbageAndEmptyArchives) {
  ExpectRejected("this is not a zip file at all", kInvalid, "Could not unzip uploaded file");
  std::mt19937 rng(42);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  ExpectRejected(noise, kInvalid, "Could not unzip uploaded file");
  ExpectRejected("", kInvalid, "non-empty zip");
  std::string empty_zip("PK\x05\x06", 4);  // end of central directory, no entries
  empty_zip.append(18, '\0');
  ExpectRejected(empty_zip, kInvalid, "non-empty zip");
  // A valid archive cut short.
  std::string zip = MakeZip({{"app.py", std::string(10000, 'a')}});
  ExpectRejected(zip.substr(0, zip.size() / 2), kInvalid, "Could not unzip uploaded file");
}

TEST_F(UnpackTest, RefusesCorruptedData) {
  std::string body(5000, 'q');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7919) % 26);
  std::string zip = MakeZip({{"app.py", body}});
  size_t at = zip.find("PK\x01\x02");  // flip a byte in the compressed data, before the directory
  ASSERT_NE(at, std::string::npos);
  zip[at / 2] ^= 0x55;
  ExpectRejected(zip, kInvalid, "Could not unzip uploaded file");
}

TEST_F(UnpackTest, RefusesDuplicatesAndFileDirectoryClashes) {
  ExpectRejected(MakeZip({{"a.py", "1"}, {"./a.py", "2"}}), kInvalid, "more than once");
  ExpectRejected(MakeZip({{"a", "file"}, {"a/b", "x"}}), kInvalid, "to be a directory");
}

TEST_F(UnpackTest, Limits) {
  std::vector<ZipEntry> many;
  for (int i = 0; i < 11; ++i) many.push_back({"f" + std::to_string(i), "x"});
  ArchiveLimits limits;
  limits.max_entries = 10;
  ExpectRejected(MakeZip(many), kInvalid, "at most 10", limits);
  limits.max_entries = 11;
  EXPECT_TRUE(UnpackZip(MakeZip(many), Dest(), limits));

  std::string zip = MakeZip({{"app.py", "x"}});
  limits.max_zip_bytes = zip.size() - 1;
  ExpectRejected(zip, "RequestEntityTooLargeException", "Zipped size must be smaller than", limits);
  limits.max_zip_bytes = zip.size();
  EXPECT_TRUE(UnpackZip(zip, Dest(), limits));

  limits = {};
  limits.max_unpacked_bytes = 1000;
  EXPECT_TRUE(UnpackZip(MakeZip({{"a", std::string(600, 'a')}, {"b", std::string(400, 'b')}}), Dest(), limits));
  ExpectRejected(MakeZip({{"a", std::string(600, 'a')}, {"b", std::string(401, 'b')}}), kInvalid,
                 "Unzipped size must be smaller than 1000 bytes", limits);
}

// One 300 MB entry of zeros: a few hundred KB zipped. Built once; it takes a moment.
const std::string& Bomb() {
  static const std::string zip = MakeZip({{"bomb.bin", "", S_IFREG | 0644, 300ull << 20}});
  return zip;
}

TEST_F(UnpackTest, ZipBombWithHonestHeadersIsRefusedBeforeWriting) {
  ASSERT_LT(Bomb().size(), 1u << 20);
  ArchiveLimits limits;
  limits.max_unpacked_bytes = 10 << 20;
  std::string d = Dest();
  auto r = UnpackZip(Bomb(), d, limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().op, kInvalid);
  EXPECT_NE(r.error().message.find("Unzipped size must be smaller than 10485760 bytes"), std::string::npos);
  EXPECT_EQ(BytesBelow(d), 0u);
}

TEST_F(UnpackTest, ZipBombWithLyingHeadersIsStoppedWhileWriting) {
  // Claim 1000 bytes uncompressed in both the local header and the central directory.
  std::string zip = Bomb();
  ASSERT_EQ(zip.compare(0, 4, "PK\x03\x04"), 0);
  size_t central = zip.find("PK\x01\x02");
  ASSERT_NE(central, std::string::npos);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) zip[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put32(22, 1000);
  put32(central + 24, 1000);
  ArchiveLimits limits;
  limits.max_unpacked_bytes = 10 << 20;
  std::string d = Dest();
  auto r = UnpackZip(zip, d, limits);
  ASSERT_FALSE(r) << "a lying zip bomb was unpacked";
  EXPECT_EQ(r.error().op, kInvalid);
  // libzip inflates past the declared size; the count taken while writing is what stops it.
  EXPECT_NE(r.error().message.find("Unzipped size must be smaller than"), std::string::npos);
  EXPECT_LE(BytesBelow(d), limits.max_unpacked_bytes);
}

TEST(Base64Test, KnownVectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), coded);
    auto back = Base64Decode(coded);
    ASSERT_TRUE(back) << coded;
    EXPECT_EQ(back.value(), plain);
  }
  EXPECT_EQ(Base64Encode(std::string("\xfb\xff", 2)), "+/8=");
}

TEST(Base64Test, RoundTripsEveryByteAndLength) {
  std::mt19937 rng(7);
  for (size_t len = 0; len < 300; ++len) {
    std::string data(len, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    auto back = Base64Decode(Base64Encode(data));
    ASSERT_TRUE(back) << len;
    EXPECT_EQ(back.value(), data) << len;
  }
}

TEST(Base64Test, IgnoresWhitespaceAcceptsMissingPadding) {
  auto r = Base64Decode("Zm9v\nYmFy\r\n Zg= =\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value(), "foobarf");
  r = Base64Decode("Zm9vYg");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value(), "foob");
}

TEST(Base64Test, RejectsMalformedInput) {
  for (const char* bad : {"Zm9v!", "Zm9v-_", "Zm9vY", "Zm=9v", "Zm9v====", "Zg=", "Zm9v=", "Zg===",
                          "Zm9v\x01", "Zm9v\xc3\xa9"}) {
    auto r = Base64Decode(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message.find("invalid base64"), std::string::npos);
    }
  }
}

TEST(Sha256Test, KnownValue) {
  EXPECT_EQ(Sha256Base64("abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  EXPECT_EQ(Sha256Base64(""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

}  // namespace
}  // namespace forklet::registry
