// Layers through the real aws CLI: PublishLayerVersion, ListLayers, ListLayerVersions,
// GetLayerVersion(ByArn), DeleteLayerVersion; --layers on create/update, mounted read-only at /opt
// in order; a Python layer's python/ importable, a Node layer's nodejs/node_modules resolvable;
// a deleted version stays with the functions that use it; versions keep their layers; all of it
// across a restart and kill -9.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kLayerArn = "arn:aws:lambda:us-east-1:000000000000:layer:";

json Parse(const CmdResult& r) {
  auto j = json::parse(r.out, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

// A directory of files (path -> content) zipped; the zip's path.
std::string ZipFiles(const std::map<std::string, std::string>& files) {
  char tmpl[] = "/tmp/forklet-layer-src-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  for (const auto& [path, content] : files) {
    fs::create_directories(fs::path(dir + "/" + path).parent_path());
    std::ofstream(dir + "/" + path) << content;
  }
  std::string zip = ZipDirectory(dir);
  fs::remove_all(dir);
  return zip;
}

constexpr const char* kPythonApp = R"(import os, sys

def handler(event, context):
    out = {"sys_path": sys.path, "opt": sorted(os.listdir("/opt"))}
    try:
        import greet
        out["greeting"] = greet.GREETING
    except ImportError as e:
        out["greeting"] = "ImportError: " + str(e)
    try:
        import only_a
        out["only_a"] = only_a.VALUE
    except ImportError:
        out["only_a"] = None
    try:
        out["data"] = open("/opt/data.txt").read()
    except OSError as e:
        out["data"] = None
    try:
        open("/opt/written", "w").write("x")
        out["write"] = "written"
    except OSError as e:
        out["write"] = e.strerror
    return out
)";

class LayersTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  void TearDown() override {
    for (const auto& z : zips_) unlink(z.c_str());
  }
  std::string Zip(const std::map<std::string, std::string>& files) {
    zips_.push_back(ZipFiles(files));
    return zips_.back();
  }
  json PublishLayer(Daemon& d, const std::string& name, const std::map<std::string, std::string>& files,
                    const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"publish-layer-version", "--layer-name", name, "--zip-file",
                                  "fileb://" + Zip(files)};
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = d.Aws(args);
    EXPECT_EQ(p.exit_code, 0) << p.err;
    return Parse(p);
  }
  // Layers a (greet "a", only_a, data "from a") and b (greet "b", data "from b").
  void PublishAB(Daemon& d) {
    PublishLayer(d, "a", {{"python/greet.py", "GREETING = 'a'\n"}, {"python/only_a.py", "VALUE = 1\n"},
                          {"data.txt", "from a"}});
    PublishLayer(d, "b", {{"python/greet.py", "GREETING = 'b'\n"}, {"data.txt", "from b"}});
  }
  CmdResult CreatePython(Daemon& d, const std::string& fn, const std::vector<std::string>& layers) {
    std::vector<std::string> args{"create-function", "--function-name", fn, "--runtime", "python3.11",
                                  "--handler", "app.handler", "--role", "arn:aws:iam::000000000000:role/x",
                                  "--zip-file", "fileb://" + Zip({{"app.py", kPythonApp}})};
    if (!layers.empty()) {
      args.push_back("--layers");
      args.insert(args.end(), layers.begin(), layers.end());
    }
    return d.Aws(args);
  }
  json InvokeJson(Daemon& d, const std::string& fn, const std::string& qualifier = "") {
    std::string body;
    std::vector<std::string> extra;
    if (!qualifier.empty()) extra = {"--qualifier", qualifier};
    auto i = Invoke(d, fn, "{}", &body, extra);
    EXPECT_EQ(i.exit_code, 0) << i.err;
    EXPECT_EQ(Parse(i).value("FunctionError", ""), "") << body;
    auto j = json::parse(body, nullptr, false);
    return j.is_object() ? j : json::object();
  }
  std::unique_ptr<Daemon> daemon_;
  std::vector<std::string> zips_;
};

TEST_F(LayersTest, PublishListGetAndDeleteVersions) {
  json v1 = PublishLayer(*daemon_, "shared", {{"python/x.py", "X = 1\n"}},
                         {"--description", "first", "--compatible-runtimes", "python3.11", "python3.12",
                          "--license-info", "MIT"});
  EXPECT_EQ(v1["Version"], 1);
  EXPECT_EQ(v1["LayerArn"], std::string(kLayerArn) + "shared");
  EXPECT_EQ(v1["LayerVersionArn"], std::string(kLayerArn) + "shared:1");
  EXPECT_EQ(v1["Description"], "first");
  EXPECT_EQ(v1["LicenseInfo"], "MIT");
  EXPECT_EQ(v1["CompatibleRuntimes"], json({"python3.11", "python3.12"}));
  EXPECT_GT(v1["Content"]["CodeSize"].get<int>(), 0);
  EXPECT_FALSE(v1["Content"]["CodeSha256"].get<std::string>().empty());
  json v2 = PublishLayer(*daemon_, "shared", {{"python/x.py", "X = 2\n"}}, {"--compatible-runtimes", "nodejs20.x"});
  EXPECT_EQ(v2["Version"], 2);
  PublishLayer(*daemon_, "other", {{"f.txt", "f"}});

  json layers = Parse(daemon_->Aws({"list-layers"}));
  ASSERT_EQ(layers["Layers"].size(), 2u) << layers.dump();
  EXPECT_EQ(layers["Layers"][1]["LayerName"], "shared");
  EXPECT_EQ(layers["Layers"][1]["LatestMatchingVersion"]["Version"], 2);
  // With a runtime: the latest version that lists it.
  json py = Parse(daemon_->Aws({"list-layers", "--compatible-runtime", "python3.11"}));
  ASSERT_EQ(py["Layers"].size(), 1u) << py.dump();
  EXPECT_EQ(py["Layers"][0]["LatestMatchingVersion"]["Version"], 1);

  json versions = Parse(daemon_->Aws({"list-layer-versions", "--layer-name", "shared"}));
  ASSERT_EQ(versions["LayerVersions"].size(), 2u) << versions.dump();
  EXPECT_EQ(versions["LayerVersions"][0]["Version"], 2);  // newest first
  EXPECT_EQ(versions["LayerVersions"][1]["Version"], 1);
  // Pages of one.
  json page = Parse(daemon_->Aws({"list-layer-versions", "--layer-name", "shared", "--max-items", "1"}));
  ASSERT_EQ(page["LayerVersions"].size(), 1u);
  EXPECT_TRUE(page.contains("NextToken")) << page.dump();

  json got = Parse(daemon_->Aws({"get-layer-version", "--layer-name", "shared", "--version-number", "1"}));
  EXPECT_EQ(got["Description"], "first");
  EXPECT_EQ(got["Content"]["CodeSha256"], v1["Content"]["CodeSha256"]);
  json by_arn = Parse(daemon_->Aws({"get-layer-version-by-arn", "--arn", std::string(kLayerArn) + "shared:2"}));
  EXPECT_EQ(by_arn["Version"], 2);

  ASSERT_EQ(daemon_->Aws({"delete-layer-version", "--layer-name", "shared", "--version-number", "1"}).exit_code, 0);
  auto gone = daemon_->Aws({"get-layer-version", "--layer-name", "shared", "--version-number", "1"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("ResourceNotFoundException"), std::string::npos) << gone.err;
  versions = Parse(daemon_->Aws({"list-layer-versions", "--layer-name", "shared"}));
  ASSERT_EQ(versions["LayerVersions"].size(), 1u);
  EXPECT_EQ(versions["LayerVersions"][0]["Version"], 2);
  // Numbers are never reused.
  EXPECT_EQ(PublishLayer(*daemon_, "shared", {{"y", "y"}})["Version"], 3);
  // A bad name is refused with Lambda's message.
  auto bad = daemon_->Aws({"publish-layer-version", "--layer-name", "no/slash", "--zip-file",
                           "fileb://" + Zip({{"y", "y"}})});
  EXPECT_NE(bad.exit_code, 0);
}

TEST_F(LayersTest, LayersAreMergedInOrderReadOnlyAtOptAndImportable) {
  PublishAB(*daemon_);
  const std::string a = std::string(kLayerArn) + "a:1", b = std::string(kLayerArn) + "b:1";
  auto c = CreatePython(*daemon_, "fn", {a, b});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json created = Parse(c);
  ASSERT_EQ(created["Layers"].size(), 2u) << created.dump();
  EXPECT_EQ(created["Layers"][0]["Arn"], a);
  EXPECT_GT(created["Layers"][0]["CodeSize"].get<int>(), 0);

  json out = InvokeJson(*daemon_, "fn");
  EXPECT_EQ(out["greeting"], "b") << out.dump();  // the later layer wins
  EXPECT_EQ(out["only_a"], 1);                    // the earlier one's other files stay
  EXPECT_EQ(out["data"], "from b");
  EXPECT_EQ(out["write"], "Read-only file system");
  EXPECT_EQ(out["opt"], json({"data.txt", "python"}));
  // Lambda's order: the function's code, then the layers, then the runtime.
  auto path = out["sys_path"].get<std::vector<std::string>>();
  auto at = [&](const std::string& p) { return std::find(path.begin(), path.end(), p) - path.begin(); };
  EXPECT_LT(at("/var/task"), at("/opt/python"));
  EXPECT_LT(at("/opt/python"), at("/var/runtime/python-sdk")) << out["sys_path"].dump();

  // The other order: a over b.
  ASSERT_EQ(daemon_->Aws({"update-function-configuration", "--function-name", "fn", "--layers", b, a}).exit_code, 0);
  out = InvokeJson(*daemon_, "fn");
  EXPECT_EQ(out["greeting"], "a") << out.dump();
  EXPECT_EQ(out["data"], "from a");
  json conf = Parse(daemon_->Aws({"get-function-configuration", "--function-name", "fn"}));
  ASSERT_EQ(conf["Layers"].size(), 2u);
  EXPECT_EQ(conf["Layers"][0]["Arn"], b);

  // Without layers, /opt is empty.
  ASSERT_EQ(daemon_->Aws({"update-function-configuration", "--function-name", "fn", "--layers"}).exit_code, 0);
  out = InvokeJson(*daemon_, "fn");
  EXPECT_EQ(out["opt"], json::array()) << out.dump();
  EXPECT_EQ(out["greeting"], "ImportError: No module named 'greet'");
  EXPECT_FALSE(Parse(daemon_->Aws({"get-function-configuration", "--function-name", "fn"})).contains("Layers"));
}

TEST_F(LayersTest, UnknownOrTooManyLayersAreRefusedAndChangeNothing) {
  PublishAB(*daemon_);
  const std::string a = std::string(kLayerArn) + "a:1";
  auto unknown = CreatePython(*daemon_, "fn", {std::string(kLayerArn) + "a:7"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("InvalidParameterValueException"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("Layer version " + std::string(kLayerArn) + "a:7 does not exist."), std::string::npos)
      << unknown.err;
  EXPECT_NE(daemon_->Aws({"get-function", "--function-name", "fn"}).exit_code, 0) << "nothing was created";
  auto six = CreatePython(*daemon_, "fn", {a, a, a, a, a, a});
  EXPECT_NE(six.exit_code, 0);
  EXPECT_NE(six.err.find("Cannot reference more than 5 layers."), std::string::npos) << six.err;
  // Another account's layer is not found.
  auto foreign = CreatePython(*daemon_, "fn", {"arn:aws:lambda:us-east-1:111111111111:layer:a:1"});
  EXPECT_NE(foreign.err.find("does not exist"), std::string::npos) << foreign.err;

  ASSERT_EQ(CreatePython(*daemon_, "fn", {a}).exit_code, 0);
  auto bad_update = daemon_->Aws({"update-function-configuration", "--function-name", "fn", "--layers",
                                  std::string(kLayerArn) + "nope:1"});
  EXPECT_NE(bad_update.exit_code, 0);
  EXPECT_NE(bad_update.err.find("does not exist"), std::string::npos) << bad_update.err;
  EXPECT_EQ(InvokeJson(*daemon_, "fn")["greeting"], "a") << "the function keeps its layers";
}

TEST_F(LayersTest, NodeLayerModulesResolve) {
  PublishLayer(*daemon_, "nodelib", {{"nodejs/node_modules/greeter/index.js",
                                      "module.exports = (n) => 'hello ' + n + ' from a layer';\n"}});
  const std::string zip = Zip({{"index.js",
                                "const greeter = require('greeter');\n"
                                "exports.handler = async () => ({ said: greeter('node'), "
                                "node_path: process.env.NODE_PATH });\n"}});
  auto c = daemon_->Aws({"create-function", "--function-name", "nfn", "--runtime", "nodejs20.x",
                         "--handler", "index.handler", "--role", "arn:aws:iam::000000000000:role/x",
                         "--zip-file", "fileb://" + zip, "--layers", std::string(kLayerArn) + "nodelib:1"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json out = InvokeJson(*daemon_, "nfn");
  EXPECT_EQ(out["said"], "hello node from a layer") << out.dump() << daemon_->ReadLog();
  EXPECT_EQ(out["node_path"].get<std::string>().rfind("/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules", 0), 0u);
}

TEST(LayersRestartTest, DeletedLayersStayWithTheirFunctionsAndVersionsAcrossRestarts) {
  auto d = Daemon::Start();
  const std::string state = d->state_dir() + "-kept";
  d.reset();
  d = Daemon::Start({}, state);
  std::vector<std::string> zips;
  auto publish = [&](const std::string& name, const std::map<std::string, std::string>& files) {
    zips.push_back(ZipFiles(files));
    return d->Aws({"publish-layer-version", "--layer-name", name, "--zip-file", "fileb://" + zips.back()});
  };
  ASSERT_EQ(publish("a", {{"python/greet.py", "GREETING = 'a'\n"}, {"python/only_a.py", "VALUE = 1\n"}}).exit_code, 0);
  ASSERT_EQ(publish("b", {{"python/greet.py", "GREETING = 'b'\n"}}).exit_code, 0);
  const std::string a = std::string(kLayerArn) + "a:1", b = std::string(kLayerArn) + "b:1";
  zips.push_back(ZipFiles({{"app.py", kPythonApp}}));
  ASSERT_EQ(d->Aws({"create-function", "--function-name", "fn", "--runtime", "python3.11", "--handler",
                    "app.handler", "--role", "r", "--zip-file", "fileb://" + zips.back(), "--layers", a})
                .exit_code, 0);
  // Version 1 keeps layer a; $LATEST moves to b.
  json v1 = Parse(d->Aws({"publish-version", "--function-name", "fn"}));
  ASSERT_EQ(v1["Layers"][0]["Arn"], a) << v1.dump();
  ASSERT_EQ(d->Aws({"update-function-configuration", "--function-name", "fn", "--layers", b}).exit_code, 0);
  // Deleted: gone from lists and new references, not from the version using it.
  ASSERT_EQ(d->Aws({"delete-layer-version", "--layer-name", "a", "--version-number", "1"}).exit_code, 0);
  EXPECT_EQ(Parse(d->Aws({"list-layer-versions", "--layer-name", "a"}))["LayerVersions"].size(), 0u);
  auto again = d->Aws({"update-function-configuration", "--function-name", "fn", "--layers", a});
  EXPECT_NE(again.err.find("does not exist"), std::string::npos) << again.err;
  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    std::string body;
    ASSERT_EQ(Invoke(*d, "fn", "{}", &body, {"--qualifier", "1"}).exit_code, 0);
    json one = json::parse(body, nullptr, false);
    EXPECT_EQ(one.value("greeting", ""), "a") << body << d->ReadLog();
    EXPECT_EQ(one.value("only_a", json()), 1);
    ASSERT_EQ(Invoke(*d, "fn", "{}", &body).exit_code, 0);
    json latest = json::parse(body, nullptr, false);
    EXPECT_EQ(latest.value("greeting", ""), "b") << body;
    EXPECT_TRUE(latest.value("only_a", json(0)).is_null());
    json conf = Parse(d->Aws({"get-function-configuration", "--function-name", "fn", "--qualifier", "1"}));
    EXPECT_EQ(conf["Layers"][0]["Arn"], a);
  };
  check("running");
  d->Kill9();
  d.reset();
  d = Daemon::Start({}, state);
  check("after kill -9");
  EXPECT_EQ(Parse(d->Aws({"list-layer-versions", "--layer-name", "b"}))["LayerVersions"].size(), 1u);
  d.reset();
  d = Daemon::Start({}, state);
  check("after a clean restart");
  // When the version goes, its /opt tree goes too: only $LATEST's is left on disk.
  ASSERT_EQ(d->Aws({"delete-function", "--function-name", "fn", "--qualifier", "1"}).exit_code, 0);
  d.reset();
  size_t opt_trees = 0;
  for (const auto& e : fs::directory_iterator(state + "/code"))
    opt_trees += e.is_directory() && e.path().filename().string().find("-opt") != std::string::npos;
  EXPECT_EQ(opt_trees, 1u);
  for (const auto& z : zips) unlink(z.c_str());
  fs::remove_all(state);
}

}  // namespace
}  // namespace forklet::testing
