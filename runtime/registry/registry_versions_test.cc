// Tests of the registry's versions and aliases: immutable copies sharing code trees, persistence
// across reopening (a restart), and code trees that go only when nothing names them.
#include "runtime/registry/registry.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "runtime/registry/registry_test_util.h"

namespace forklet::registry {
namespace {

namespace fs = std::filesystem;
using testing::MakeZip;
using testing::ReadFile;
using testing::TempDir;

FunctionConfig Config(const std::string& name) {
  FunctionConfig c;
  c.name = name;
  c.runtime = "python3.12";
  c.handler = "app.handler";
  return c;
}

std::string Zip(const std::string& body) { return MakeZip({{"app.py", body}}); }

class RegistryVersionsTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    reg_.reset();
    auto r = Registry::Open(state_.path());
    ASSERT_TRUE(r) << r.error().ToString();
    reg_ = std::move(r.value());
  }
  std::string CodeOf(const std::string& qualifier) {
    auto d = reg_->Resolve("f", qualifier);
    return d ? ReadFile(d->code_dir + "/app.py") : "<none>";
  }
  TempDir state_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(RegistryVersionsTest, VersionsKeepTheirCodeAcrossChangesAndReopening) {
  ASSERT_TRUE(reg_->Create(Config("f"), Zip("one")));
  auto v1 = reg_->PublishVersion("f", "first", "");
  ASSERT_TRUE(v1) << v1.error().ToString();
  EXPECT_EQ(v1->config.version, "1");
  EXPECT_EQ(v1->config.description, "first");
  EXPECT_EQ(reg_->PublishVersion("f", "", "")->config.version, "1");  // nothing changed
  ASSERT_TRUE(reg_->UpdateCode("f", Zip("two")));
  EXPECT_EQ(reg_->PublishVersion("f", "", "")->config.version, "2");
  ASSERT_TRUE(reg_->UpdateCode("f", Zip("three")));
  ASSERT_TRUE(reg_->PutAlias("f", Alias{"live", "1", "", ""}, true));
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(CodeOf("1"), "one");
    EXPECT_EQ(CodeOf("2"), "two");
    EXPECT_EQ(CodeOf(""), "three");
    EXPECT_EQ(CodeOf("live"), "one");
    EXPECT_EQ(CodeOf("9"), "<none>");
    Reopen();  // a restart: the trees of versions are still there
  }
  auto conflict = reg_->DeleteVersion("f", "1");
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().op, "ResourceConflictException");
  std::string dir1 = reg_->Resolve("f", "1")->code_dir;
  ASSERT_TRUE(reg_->DeleteAlias("f", "live"));
  ASSERT_TRUE(reg_->DeleteVersion("f", "1"));
  EXPECT_FALSE(fs::exists(dir1)) << "a tree nothing names goes";
  EXPECT_EQ(CodeOf("2"), "two");
  auto missing = reg_->DeleteVersion("f", "1");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().op, "ResourceNotFoundException");
  ASSERT_TRUE(reg_->UpdateCode("f", Zip("four")));
  EXPECT_EQ(reg_->PublishVersion("f", "", "")->config.version, "3");  // numbers are not reused
  Reopen();
  EXPECT_EQ(CodeOf("3"), "four");
  std::string dir2 = reg_->Resolve("f", "2")->code_dir;
  ASSERT_TRUE(reg_->Delete("f"));
  EXPECT_FALSE(fs::exists(dir2));
}

TEST_F(RegistryVersionsTest, AliasesAndPublishChecks) {
  ASSERT_TRUE(reg_->Create(Config("f"), Zip("one")));
  auto sha = reg_->Get("f")->config.code_sha256;
  auto wrong = reg_->PublishVersion("f", "", "not-the-sha");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().op, "InvalidParameterValueException");
  ASSERT_TRUE(reg_->PublishVersion("f", "", sha));
  for (const char* bad : {"123", "", "a:b", "$LATEST"}) {
    auto a = reg_->PutAlias("f", Alias{bad, "1", "", ""}, true);
    ASSERT_FALSE(a) << bad;
    EXPECT_EQ(a.error().op, "InvalidParameterValueException") << bad;
  }
  auto absent = reg_->PutAlias("f", Alias{"x", "5", "", ""}, true);
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().op, "ResourceNotFoundException");
  auto a = reg_->PutAlias("f", Alias{"x", "1", "d", ""}, true);
  ASSERT_TRUE(a);
  EXPECT_FALSE(reg_->PutAlias("f", Alias{"x", "1", "", ""}, true));
  ChangeOptions stale;
  stale.expected_revision_id = "stale";
  auto pre = reg_->PutAlias("f", Alias{"x", "$LATEST", "", ""}, false, stale);
  ASSERT_FALSE(pre);
  EXPECT_EQ(pre.error().op, "PreconditionFailedException");
  auto moved = reg_->PutAlias("f", Alias{"x", "$LATEST", "", ""}, false);
  ASSERT_TRUE(moved);
  EXPECT_NE(moved->revision_id, a->revision_id);
  EXPECT_EQ(reg_->Resolve("f", "x")->config.version, "$LATEST");
}

}  // namespace
}  // namespace forklet::registry
