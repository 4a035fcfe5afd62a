// Tests of registry.h: The functions this daemon knows, with their code, persisted in the state ... (see registry.h).
#include "runtime/registry/registry.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/registry/registry_test_util.h"
#include "runtime/registry/function_key.h"

namespace forklet::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::MakeZip;
using testing::ModeOf;
using testing::ReadFile;
using testing::SimpleZip;
using testing::TempDir;

FunctionConfig Config(const std::string& name) {
  FunctionConfig c;
  c.name = name;
  c.runtime = "python3.12";
  c.handler = "app.handler";
  c.memory_mb = 256;
  c.timeout_s = 10;
  c.environment = {{"GREETING", "hi"}};
  return c;
}

// Names in the functions dir, including hidden leftovers.
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    reg_.reset();
    auto r = Registry::Open(state_.path());
    ASSERT_TRUE(r) << r.error().ToString();
    reg_ = std::move(r.value());
  }
  std::string FunctionsDir() { return state_ / "functions"; }

  TempDir state_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(RegistryTest, CreateGetListDelete) {
  std::string zip = MakeZip({{"app.py", "def handler(e, c):\n    return 1\n"},
                             {"lib/util.py", "U = 1\n"}});
  auto d = reg_->Create(Config("hello"), zip);
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->config.revision, 1u);
  EXPECT_EQ(d->config.code_sha256, Sha256Base64(zip));
  EXPECT_EQ(d->config.code_size, zip.size());
  EXPECT_TRUE(std::regex_match(d->config.last_modified,
                               std::regex(R"(20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000)")))
      << d->config.last_modified;
  EXPECT_EQ(d->code_dir.front(), '/');
  EXPECT_EQ(ReadFile(d->code_dir + "/lib/util.py"), "U = 1\n");
  EXPECT_EQ(ModeOf(d->code_dir), S_IFDIR | 0755);
  EXPECT_EQ(ReadFile(d->zip_path), zip);

  auto got = reg_->Get("hello");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code_dir, d->code_dir);
  EXPECT_EQ(ToStateJson(got->config), ToStateJson(d->config));
  EXPECT_FALSE(reg_->Get("nope"));

  ASSERT_TRUE(reg_->Create(Config("abc"), SimpleZip()));
  auto list = reg_->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].config.name, "abc");
  EXPECT_EQ(list[1].config.name, "hello");

  ASSERT_TRUE(reg_->Delete("hello"));
  EXPECT_FALSE(reg_->Get("hello"));
  // The code stays while something holds it (an invocation starting, an instance running it).
  const std::string code_dir = d->code_dir;
  EXPECT_TRUE(fs::exists(code_dir));
  d = Error{"released", 0, ""};
  got.reset();
  list.clear();
  EXPECT_FALSE(fs::exists(code_dir));
  EXPECT_EQ(Entries(FunctionsDir()), std::vector<std::string>{"abc"});
  auto again = reg_->Delete("hello");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().op, "ResourceNotFoundException");
  EXPECT_EQ(again.error().message,
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:hello");
}

TEST_F(RegistryTest, TwoAccountsKeepOneNameApartAcrossAReopen) {
  ASSERT_TRUE(reg_->Create(Config("f"), SimpleZip("V = 1\n")));
  auto other = reg_->Create(Config(FunctionKey("123456789012", "f")), SimpleZip("V = 2\n"));
  ASSERT_TRUE(other) << other.error().ToString();
  EXPECT_FALSE(reg_->Create(Config("12345.f"), SimpleZip())) << "an account id has 12 digits";
  auto j = ToLambdaJson(other->config);
  EXPECT_EQ(j["FunctionName"], "f");
  EXPECT_EQ(j["FunctionArn"], "arn:aws:lambda:us-east-1:123456789012:function:f");
  Reopen();
  ASSERT_EQ(reg_->List().size(), 2u);
  auto mine = reg_->Get("123456789012.f");
  ASSERT_TRUE(mine);
  EXPECT_NE(mine->code_dir, reg_->Get("f")->code_dir);
  EXPECT_EQ(ReadFile(mine->code_dir + "/app.py"), "V = 2\n");
  ASSERT_TRUE(reg_->Delete("f"));
  EXPECT_TRUE(reg_->Get("123456789012.f"));
}

TEST_F(RegistryTest, DuplicateCreateConflictsAndKeepsTheOriginal) {
  auto first = reg_->Create(Config("f"), SimpleZip("A = 1\n"));
  ASSERT_TRUE(first);
  auto second = reg_->Create(Config("f"), SimpleZip("B = 2\n"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().op, "ResourceConflictException");
  EXPECT_EQ(second.error().message, "Function already exist: f");
  EXPECT_EQ(ReadFile(reg_->Get("f")->code_dir + "/app.py"), "A = 1\n");
  EXPECT_EQ(Entries(FunctionsDir()), std::vector<std::string>{"f"});
}

TEST_F(RegistryTest, CreateFailuresLeaveNothingBehind) {
  auto bad_cfg = Config("f");
  bad_cfg.memory_mb = 64;
  auto r = reg_->Create(bad_cfg, SimpleZip());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().op, "InvalidParameterValueException");
  auto bad_name = Config("a/b");
  EXPECT_FALSE(reg_->Create(bad_name, SimpleZip()));
  auto bad_zip = reg_->Create(Config("f"), "garbage");
  ASSERT_FALSE(bad_zip);
  EXPECT_EQ(bad_zip.error().op, "InvalidParameterValueException");
  EXPECT_FALSE(reg_->Create(Config("f"), MakeZip({{"../evil", "x"}})));
  EXPECT_TRUE(Entries(FunctionsDir()).empty());
  EXPECT_FALSE(fs::exists(state_ / "evil"));
  EXPECT_TRUE(reg_->List().empty());
}

TEST_F(RegistryTest, UpdateCodePublishesANewRevisionAndKeepsHeldOnes) {
  auto v1 = reg_->Create(Config("f"), SimpleZip("V = 1\n"));
  ASSERT_TRUE(v1);
  std::string zip2 = SimpleZip("V = 2\n");
  auto v2 = reg_->UpdateCode("f", zip2);
  ASSERT_TRUE(v2) << v2.error().ToString();
  EXPECT_EQ(v2->config.revision, 2u);
  EXPECT_EQ(v2->config.code_sha256, Sha256Base64(zip2));
  EXPECT_NE(v2->code_dir, v1->code_dir);
  EXPECT_EQ(ReadFile(v2->code_dir + "/app.py"), "V = 2\n");
  EXPECT_EQ(ReadFile(reg_->Get("f")->code_dir + "/app.py"), "V = 2\n");
  EXPECT_EQ(v2->config.memory_mb, 256u);  // configuration untouched
  // An instance started on v1 may still be running from its bind mount of v1's directory: it
  // stays for as long as anyone holds it, however many updates follow.
  EXPECT_EQ(ReadFile(v1->code_dir + "/app.py"), "V = 1\n");
  auto v3 = reg_->UpdateCode("f", SimpleZip("V = 3\n"));
  ASSERT_TRUE(v3);
  for (int i = 4; i < 8; ++i) ASSERT_TRUE(reg_->UpdateCode("f", SimpleZip("V = 4\n")));
  EXPECT_EQ(ReadFile(v1->code_dir + "/app.py"), "V = 1\n");
  EXPECT_TRUE(fs::exists(v1->zip_path));
  const std::string v1_dir = v1->code_dir, v1_zip = v1->zip_path, v2_dir = v2->code_dir;
  v1 = Error{"released", 0, ""};
  EXPECT_FALSE(fs::exists(v1_dir));
  EXPECT_FALSE(fs::exists(v1_zip));
  EXPECT_TRUE(fs::exists(v2_dir));
  EXPECT_TRUE(fs::exists(v3->code_dir));
  // Only the current tree and the held ones exist.
  EXPECT_EQ(Entries(state_ / "code").size(), 6u);

  // After a restart no instance survives: only the current code is kept.
  const std::string v3_dir = v3->code_dir;
  v2 = Error{"released", 0, ""};
  v3 = Error{"released", 0, ""};
  Reopen();
  EXPECT_FALSE(fs::exists(v2_dir));
  EXPECT_FALSE(fs::exists(v3_dir));
  EXPECT_EQ(ReadFile(reg_->Get("f")->code_dir + "/app.py"), "V = 4\n");
  EXPECT_EQ(Entries(state_ / "code").size(), 2u);

  auto missing = reg_->UpdateCode("nope", SimpleZip());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().op, "ResourceNotFoundException");
}

TEST_F(RegistryTest, FailedUpdateCodeLeavesTheOldCodeServable) {
  auto v1 = reg_->Create(Config("f"), SimpleZip("V = 1\n"));
  ASSERT_TRUE(v1);
  std::string before = ReadFile(FunctionsDir() + "/f/function.json");
  for (const std::string& bad : {std::string("garbage"), MakeZip({{"/abs", "x"}}),
                                 MakeZip({{"ok.py", "1"}, {"link", "/", S_IFLNK | 0777}})}) {
    auto r = reg_->UpdateCode("f", bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().op, "InvalidParameterValueException");
    auto now = reg_->Get("f");
    ASSERT_TRUE(now);
    EXPECT_EQ(ToStateJson(now->config), ToStateJson(v1->config));
    EXPECT_EQ(now->code_dir, v1->code_dir);
    EXPECT_EQ(ReadFile(now->code_dir + "/app.py"), "V = 1\n");
    EXPECT_EQ(ReadFile(FunctionsDir() + "/f/function.json"), before);
  }
  EXPECT_EQ(Entries(FunctionsDir()), std::vector<std::string>{"f"});  // no staging left
  EXPECT_EQ(Entries(FunctionsDir() + "/f"), std::vector<std::string>{"function.json"});
  const std::string tree = fs::path(v1->code_dir).filename();
  EXPECT_EQ(Entries(state_ / "code"), (std::vector<std::string>{tree, tree + ".zip"}));
  Reopen();
  EXPECT_EQ(ReadFile(reg_->Get("f")->code_dir + "/app.py"), "V = 1\n");
}

TEST_F(RegistryTest, UpdateConfiguration) {
  auto v1 = reg_->Create(Config("f"), SimpleZip());
  ASSERT_TRUE(v1);
  auto v2 = reg_->UpdateConfiguration(
      "f", json{{"MemorySize", 1024}, {"Timeout", 60}, {"Handler", "app.other"},
                {"Environment", {{"Variables", {{"MODE", "fast"}}}}}, {"Description", "d"}});
  ASSERT_TRUE(v2) << v2.error().ToString();
  EXPECT_EQ(v2->config.revision, 2u);
  EXPECT_EQ(v2->config.memory_mb, 1024u);
  EXPECT_EQ(v2->config.timeout_s, 60u);
  EXPECT_EQ(v2->config.handler, "app.other");
  EXPECT_EQ(v2->config.description, "d");
  EXPECT_EQ(v2->config.environment, (std::map<std::string, std::string>{{"MODE", "fast"}}));
  EXPECT_EQ(v2->config.code_sha256, v1->config.code_sha256);
  EXPECT_EQ(v2->code_dir, v1->code_dir);  // same code

  // Nothing changes on error, including the fields that were valid.
  for (const json& bad : {json{{"MemorySize", 64}, {"Timeout", 5}}, json{{"Timeout", 901}},
                          json{{"Runtime", "java21"}}, json{{"Handler", "nodot"}},
                          json{{"Environment", {{"Variables", {{"AWS_REGION", "x"}}}}}},
                          json{{"MemorySize", "big"}}}) {
    auto r = reg_->UpdateConfiguration("f", bad);
    ASSERT_FALSE(r) << bad.dump();
    EXPECT_EQ(r.error().op, "InvalidParameterValueException") << bad.dump();
    EXPECT_EQ(ToStateJson(reg_->Get("f")->config), ToStateJson(v2->config)) << bad.dump();
  }
  auto missing = reg_->UpdateConfiguration("nope", json{{"Timeout", 5}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().op, "ResourceNotFoundException");

  // A later code update keeps the configuration and moves the revision on.
  auto v3 = reg_->UpdateCode("f", SimpleZip("V = 3\n"));
  ASSERT_TRUE(v3);
  EXPECT_EQ(v3->config.revision, 3u);
  EXPECT_EQ(v3->config.memory_mb, 1024u);
}

TEST_F(RegistryTest, StatePersistsAcrossOpen) {
  // One zip, kept: a zip made again a second later differs in its entries' timestamps.
  const std::string zip_one = SimpleZip("O = 1\n");
  ASSERT_TRUE(reg_->Create(Config("one"), zip_one));
  ASSERT_TRUE(reg_->Create(Config("two"), SimpleZip("T = 2\n")));
  ASSERT_TRUE(reg_->UpdateConfiguration("two", json{{"Timeout", 42}}));
  ASSERT_TRUE(reg_->UpdateCode("two", SimpleZip("T = 3\n")));
  ASSERT_TRUE(reg_->Create(Config("gone"), SimpleZip()));
  ASSERT_TRUE(reg_->Delete("gone"));
  std::vector<json> before;
  for (const auto& d : reg_->List()) before.push_back(ToStateJson(d.config));

  Reopen();
  auto list = reg_->List();
  ASSERT_EQ(list.size(), 2u);
  for (size_t i = 0; i < list.size(); ++i) EXPECT_EQ(ToStateJson(list[i].config), before[i]);
  EXPECT_EQ(list[1].config.timeout_s, 42u);
  EXPECT_EQ(list[1].config.revision, 3u);
  EXPECT_EQ(ReadFile(list[1].code_dir + "/app.py"), "T = 3\n");
  EXPECT_EQ(ReadFile(list[0].code_dir + "/app.py"), "O = 1\n");
  EXPECT_EQ(ReadFile(list[0].zip_path), zip_one);
}

TEST_F(RegistryTest, OpenRemovesLeftoversAndSkipsBrokenFunctions) {
  ASSERT_TRUE(reg_->Create(Config("good"), SimpleZip()));
  ASSERT_TRUE(reg_->Create(Config("broken"), SimpleZip()));
  reg_.reset();
  // Debris of interrupted changes, and a function whose state file was damaged.
  fs::create_directories(FunctionsDir() + "/.tmp-abc123/code/1");
  std::ofstream(FunctionsDir() + "/.tmp-abc123/code/1/x") << "x";
  fs::create_directories(FunctionsDir() + "/good/code/7");  // a revision never switched to
  std::ofstream(FunctionsDir() + "/good/function.json.tmp") << "{";
  std::ofstream(FunctionsDir() + "/broken/function.json", std::ios::trunc) << "{not json";
  std::ofstream(FunctionsDir() + "/stray-file") << "?";
  fs::create_directories(state_ / "code/.tmp-zzz/code");           // staging of a change
  fs::create_directories(state_ / "code/0123456789abcdef-9");       // published, never named

  Reopen();
  auto list = reg_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].config.name, "good");
  EXPECT_FALSE(fs::exists(FunctionsDir() + "/.tmp-abc123"));
  EXPECT_FALSE(fs::exists(FunctionsDir() + "/good/code/7"));
  EXPECT_FALSE(fs::exists(FunctionsDir() + "/good/function.json.tmp"));
  EXPECT_TRUE(fs::exists(FunctionsDir() + "/broken"));  // kept for inspection
  EXPECT_FALSE(fs::exists(state_ / "code/.tmp-zzz"));
  EXPECT_FALSE(fs::exists(state_ / "code/0123456789abcdef-9"));
  EXPECT_TRUE(fs::exists(list[0].code_dir));

  // Creating the broken function again replaces its unloadable directory.
  auto again = reg_->Create(Config("broken"), SimpleZip("NEW = 1\n"));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(ReadFile(again->code_dir + "/app.py"), "NEW = 1\n");
  Reopen();
  EXPECT_EQ(reg_->List().size(), 2u);
}

TEST_F(RegistryTest, ReservedConcurrencyIsPersistedWithoutANewRevision) {
  auto v1 = reg_->Create(Config("f"), SimpleZip());
  ASSERT_TRUE(v1);
  auto set = reg_->SetReservedConcurrency("f", 5);
  ASSERT_TRUE(set) << set.error().ToString();
  EXPECT_EQ(set->config.reserved_concurrency, 5u);
  EXPECT_EQ(RevisionId(set->config), RevisionId(v1->config));
  EXPECT_EQ(set->code_dir, v1->code_dir);
  Reopen();
  EXPECT_EQ(reg_->Get("f")->config.reserved_concurrency, 5u);
  ASSERT_TRUE(reg_->UpdateConfiguration("f", json{{"Timeout", 9}}));  // kept across changes
  ASSERT_TRUE(reg_->UpdateCode("f", SimpleZip("X = 1\n")));
  Reopen();
  EXPECT_EQ(reg_->Get("f")->config.reserved_concurrency, 5u);
  ASSERT_TRUE(reg_->SetReservedConcurrency("f", std::nullopt));
  Reopen();
  EXPECT_FALSE(reg_->Get("f")->config.reserved_concurrency);
  EXPECT_EQ(reg_->SetReservedConcurrency("nope", 1).error().op, "ResourceNotFoundException");
}

TEST_F(RegistryTest, RevisionIdPreconditionsAndDryRun) {
  auto v1 = reg_->Create(Config("f"), SimpleZip("V = 1\n"));
  ASSERT_TRUE(v1);
  const std::string r1 = RevisionId(v1->config);
  ChangeOptions dry;
  dry.dry_run = true;
  auto d = reg_->UpdateCode("f", SimpleZip("V = 2\n"), dry);
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(RevisionId(reg_->Get("f")->config), r1);
  EXPECT_EQ(ReadFile(reg_->Get("f")->code_dir + "/app.py"), "V = 1\n");
  auto bad_dry = reg_->UpdateCode("f", "garbage", dry);
  ASSERT_FALSE(bad_dry);
  EXPECT_EQ(bad_dry.error().op, "InvalidParameterValueException");

  ChangeOptions at_r1;
  at_r1.expected_revision_id = r1;
  auto v2 = reg_->UpdateConfiguration("f", json{{"Timeout", 7}}, at_r1);
  ASSERT_TRUE(v2) << v2.error().ToString();
  const std::string r2 = RevisionId(v2->config);
  EXPECT_NE(r2, r1);
  // r1 is stale now: both kinds of update refuse it and change nothing.
  auto stale_code = reg_->UpdateCode("f", SimpleZip("V = 3\n"), at_r1);
  ASSERT_FALSE(stale_code);
  EXPECT_EQ(stale_code.error().op, "PreconditionFailedException");
  auto stale_cfg = reg_->UpdateConfiguration("f", json{{"Timeout", 8}}, at_r1);
  ASSERT_FALSE(stale_cfg);
  EXPECT_EQ(stale_cfg.error().op, "PreconditionFailedException");
  EXPECT_EQ(reg_->Get("f")->config.timeout_s, 7u);
  EXPECT_EQ(ReadFile(reg_->Get("f")->code_dir + "/app.py"), "V = 1\n");
  ChangeOptions at_r2;
  at_r2.expected_revision_id = r2;
  auto v3 = reg_->UpdateCode("f", SimpleZip("V = 3\n"), at_r2);
  ASSERT_TRUE(v3);
  EXPECT_NE(RevisionId(v3->config), r2);
  d = Error{"released", 0, ""};
  EXPECT_EQ(Entries(state_ / "code").size(), 4u);  // v1 (held by v1) and v3: no dry-run debris
}

TEST_F(RegistryTest, ARecreatedNameIsAnotherFunction) {
  auto a = reg_->Create(Config("f"), SimpleZip("A = 1\n"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(reg_->SetReservedConcurrency("f", 3));
  ASSERT_TRUE(reg_->Delete("f"));
  auto b = reg_->Create(Config("f"), SimpleZip("B = 1\n"));
  ASSERT_TRUE(b);
  EXPECT_NE(a->config.function_id, b->config.function_id);
  EXPECT_NE(a->code_dir, b->code_dir);
  EXPECT_NE(RevisionId(a->config), RevisionId(b->config));
  EXPECT_FALSE(b->config.reserved_concurrency);
  EXPECT_EQ(ReadFile(a->code_dir + "/app.py"), "A = 1\n");  // still held by a
  Reopen();
  EXPECT_EQ(reg_->Get("f")->config.function_id, b->config.function_id);
}

TEST_F(RegistryTest, StateOfAnOlderLayoutLoads) {
  reg_.reset();
  // functions/<name>/code/<rev> as written before code trees had their own folder.
  fs::create_directories(FunctionsDir() + "/old/code/4");
  std::ofstream(FunctionsDir() + "/old/code/4/app.py") << "OLD = 1\n";
  std::ofstream(FunctionsDir() + "/old/code/4.zip") << SimpleZip("OLD = 1\n");
  fs::create_directories(FunctionsDir() + "/old/code/3");
  json j = ToStateJson(Config("old"));
  j.erase("function_id");
  j["revision"] = 4;
  j["code_revision"] = 4;
  std::ofstream(FunctionsDir() + "/old/function.json") << j.dump();
  Reopen();
  auto d = reg_->Get("old");
  ASSERT_TRUE(d);
  EXPECT_EQ(ReadFile(d->code_dir + "/app.py"), "OLD = 1\n");
  EXPECT_FALSE(fs::exists(FunctionsDir() + "/old/code/3"));
  auto v5 = reg_->UpdateCode("old", SimpleZip("NEW = 1\n"));
  ASSERT_TRUE(v5) << v5.error().ToString();
  d.reset();
  Reopen();
  EXPECT_EQ(ReadFile(reg_->Get("old")->code_dir + "/app.py"), "NEW = 1\n");
  EXPECT_EQ(reg_->Get("old")->config.revision, 5u);
  EXPECT_EQ(Entries(FunctionsDir() + "/old"), std::vector<std::string>{"function.json"});
}

TEST_F(RegistryTest, StateDirIsExclusive) {
  auto second = Registry::Open(state_.path());
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().ToString().find("in use"), std::string::npos) << second.error().ToString();
  reg_.reset();
  EXPECT_TRUE(Registry::Open(state_.path()));
}

TEST_F(RegistryTest, ConcurrentChangesAndReads) {
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      auto list = reg_->List();
      for (size_t i = 0; i < list.size(); ++i) {
        EXPECT_GE(list[i].config.revision, 1u);
        if (i > 0) {
          EXPECT_LT(list[i - 1].config.name, list[i].config.name);
        }
      }
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      std::string name = "fn" + std::to_string(t);
      EXPECT_TRUE(reg_->Create(Config(name), SimpleZip()));
      for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(reg_->UpdateCode(name, SimpleZip("I = " + std::to_string(i) + "\n")));
        EXPECT_TRUE(reg_->UpdateConfiguration(name, json{{"Timeout", 10 + i}}));
      }
    });
  }
  // Everyone races to create the same name: exactly one wins.
  std::atomic<int> won{0};
  std::vector<std::thread> racers;
  for (int t = 0; t < 4; ++t)
    racers.emplace_back([&] {
      if (reg_->Create(Config("race"), SimpleZip())) ++won;
    });
  for (auto& w : writers) w.join();
  for (auto& r : racers) r.join();
  stop = true;
  reader.join();
  EXPECT_EQ(won, 1);
  auto list = reg_->List();
  ASSERT_EQ(list.size(), 5u);
  for (const auto& d : list) {
    if (d.config.name == "race") continue;
    EXPECT_EQ(d.config.revision, 11u);
    EXPECT_EQ(ReadFile(d.code_dir + "/app.py"), "I = 4\n");
  }
}

// A full disk must fail the change cleanly: CodeStorageExceededException, old state intact.
// Runs in a private mount namespace on a 1 MB tmpfs; skipped where mounting is not allowed.
TEST(RegistryDiskFullTest, FailedWriteLeavesStateIntact) {
  TempDir tmp;
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("tmpfs", tmp.path().c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "needs CAP_SYS_ADMIN to mount a small tmpfs";
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{tmp.path()};

  auto reg = Registry::Open(tmp.path());
  ASSERT_TRUE(reg) << reg.error().ToString();
  auto v1 = (*reg)->Create(Config("f"), SimpleZip("V = 1\n"));
  ASSERT_TRUE(v1) << v1.error().ToString();

  // 4 MB of zeros zip to a few KB but do not fit on the disk unpacked.
  std::string big = MakeZip({{"app.py", "V = 2\n"}, {"blob", "", S_IFREG | 0644, 4 << 20}});
  auto r = (*reg)->UpdateCode("f", big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().op, "CodeStorageExceededException");
  EXPECT_EQ(r.error().message, "state dir: No space left on device");
  EXPECT_EQ(ReadFile((*reg)->Get("f")->code_dir + "/app.py"), "V = 1\n");
  EXPECT_EQ((*reg)->Get("f")->config.revision, 1u);

  auto c = (*reg)->Create(Config("g"), big);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().op, "CodeStorageExceededException");
  EXPECT_FALSE((*reg)->Get("g"));
  EXPECT_EQ(Entries(tmp / "functions"), std::vector<std::string>{"f"});  // staging removed

  // The space is back: changes work again.
  ASSERT_TRUE((*reg)->UpdateCode("f", SimpleZip("V = 3\n")));
  reg->reset();
  auto reopened = Registry::Open(tmp.path());
  ASSERT_TRUE(reopened);
  EXPECT_EQ(ReadFile((*reopened)->Get("f")->code_dir + "/app.py"), "V = 3\n");
}

}  // namespace
}  // namespace forklet::registry
