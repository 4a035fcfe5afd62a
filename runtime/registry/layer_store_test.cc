// Tests of layers in the registry: versions persisted across reopening, a deleted version kept by
// the functions using it, merging in order, and /opt trees that go when nothing names them.
#include "runtime/registry/layer_store.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "runtime/registry/registry.h"
#include "runtime/registry/registry_test_util.h"

namespace forklet::registry {
namespace {

namespace fs = std::filesystem;
using testing::MakeZip;
using testing::ReadFile;
using testing::TempDir;

class LayerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    reg_.reset();
    auto r = Registry::Open(state_.path());
    ASSERT_TRUE(r) << r.error().ToString();
    reg_ = std::move(r.value());
  }
  uint64_t Publish(const std::string& key, const std::vector<testing::ZipEntry>& files) {
    LayerVersion v;
    v.key = key;
    auto p = reg_->Layers().Publish(v, MakeZip(files));
    EXPECT_TRUE(p) << p.error().ToString();
    return p ? p->version : 0;
  }
  Result<Deployed> Create(const std::vector<std::string>& arns) {
    FunctionConfig c;
    c.name = "f";
    c.runtime = "python3.12";
    c.handler = "app.handler";
    for (const auto& a : arns) c.layers.push_back({a, 0});
    return reg_->Create(c, MakeZip({{"app.py", "x"}}));
  }
  TempDir state_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(LayerStoreTest, VersionsArePersistedAndNumbersNeverReused) {
  EXPECT_EQ(Publish("a", {{"f.txt", "1"}}), 1u);
  EXPECT_EQ(Publish("a", {{"f.txt", "2"}}), 2u);
  ASSERT_TRUE(reg_->Layers().Delete("a", 2));
  Reopen();
  ASSERT_TRUE(reg_->Layers().Get("a", 1));
  EXPECT_FALSE(reg_->Layers().Get("a", 2));
  EXPECT_EQ(ReadFile(reg_->Layers().Get("a", 1)->content->dir + "/f.txt"), "1");
  EXPECT_EQ(Publish("a", {{"f.txt", "3"}}), 3u);
  EXPECT_FALSE(fs::exists(state_ / "layers/a/2")) << "a deleted version's files go";
}

TEST_F(LayerStoreTest, LaterLayersWinAndADeletedVersionStaysWithItsFunction) {
  Publish("a", {{"same.txt", "a"}, {"only_a.txt", "a"}, {"dir/x", "a"}});
  Publish("b", {{"same.txt", "b"}, {"dir", "", S_IFDIR | 0755}, {"dir/y", "b"}});
  auto d = Create({LayerVersionArn("a", 1), LayerVersionArn("b", 1)});
  ASSERT_TRUE(d) << d.error().ToString();
  ASSERT_TRUE(d->opt);
  EXPECT_EQ(ReadFile(d->opt->dir + "/same.txt"), "b");
  EXPECT_EQ(ReadFile(d->opt->dir + "/only_a.txt"), "a");
  EXPECT_EQ(ReadFile(d->opt->dir + "/dir/x"), "a");
  EXPECT_EQ(ReadFile(d->opt->dir + "/dir/y"), "b");
  ASSERT_TRUE(reg_->Layers().Delete("a", 1));
  Reopen();
  auto again = reg_->Get("f");
  ASSERT_TRUE(again && again->opt);
  EXPECT_EQ(ReadFile(again->opt->dir + "/only_a.txt"), "a");
  EXPECT_EQ(again->config.layers.size(), 2u);
  EXPECT_GT(again->config.layers[0].code_size, 0u);
  // A new reference to the deleted version is refused; the function keeps what it had.
  auto refused = reg_->UpdateConfiguration("f", {{"Layers", {LayerVersionArn("a", 1)}}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().op, "InvalidParameterValueException");
  EXPECT_EQ(reg_->Get("f")->opt->dir, again->opt->dir);
}

TEST_F(LayerStoreTest, AnOptTreeGoesWhenNothingNamesIt) {
  Publish("a", {{"f", "a"}});
  ASSERT_TRUE(Create({LayerVersionArn("a", 1)}));
  const std::string first = reg_->Get("f")->opt->dir;
  ASSERT_TRUE(reg_->PublishVersion("f", "", ""));
  ASSERT_TRUE(reg_->UpdateConfiguration("f", {{"Layers", nlohmann::json::array()}}));
  EXPECT_FALSE(reg_->Get("f")->opt);
  EXPECT_TRUE(fs::exists(first)) << "version 1 still uses it";
  EXPECT_EQ(reg_->Resolve("f", "1")->opt->dir, first);
  ASSERT_TRUE(reg_->DeleteVersion("f", "1"));
  EXPECT_FALSE(fs::exists(first));
}

}  // namespace
}  // namespace forklet::registry
