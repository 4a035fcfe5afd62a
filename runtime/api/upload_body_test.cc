// Tests of upload_body.h: a code upload's JSON body split without copying its zip.
#include "runtime/api/upload_body.h"

#include <gtest/gtest.h>

namespace forklet::api {
namespace {

using nlohmann::json;

TEST(UploadBodyTest, FindsTheMemberAtItsPathOnly) {
  std::string body = R"({"Description": "\"Code\": {\"ZipFile\": \"no\"}", "Tags": {"ZipFile": "no"},
                        "List": [{"Code": {"ZipFile": "no"}}], "N": 1e400,
                        "Code" : { "S": null, "ZipFile" : "UEsDBA==" }, "After": true})";
  auto span = FindStringMember(body, {"Code", "ZipFile"});
  ASSERT_TRUE(span);
  EXPECT_EQ(body.substr(span->first, span->second - span->first), "UEsDBA==");
  auto top = FindStringMember(R"({"ZipFile": "QUJD", "DryRun": true})", {"ZipFile"});
  ASSERT_TRUE(top);
  EXPECT_EQ(top->first, 13u);
  EXPECT_EQ(top->second, 17u);
}

TEST(UploadBodyTest, AnythingUnusualIsLeftToTheParser) {
  for (const char* body : {R"({"Code": {"ZipFile": "QU\/JD"}})",  // an escape
                           R"({"Code": {"ZipFile": 5}})", R"({"Code": "x"})", R"({"Code": {"ZipFile": "QUJD)",
                           R"([{"Code": {"ZipFile": "QUJD"}}])", R"({"Code": {}})", ""})
    EXPECT_FALSE(FindStringMember(body, {"Code", "ZipFile"})) << body;
}

TEST(UploadBodyTest, SplitsALargeBodyAndKeepsTheRest) {
  std::string zip(2 << 20, 'A');
  std::string raw = json{{"FunctionName", "f"}, {"Code", {{"ZipFile", zip}}}, {"Timeout", 9}}.dump();
  auto split = SplitLargeUpload(raw, {"Code", "ZipFile"});
  ASSERT_TRUE(split);
  EXPECT_EQ(split->zip.size(), zip.size());
  EXPECT_EQ(split->zip.data(), raw.data() + raw.find(zip));  // a view, not a copy
  EXPECT_EQ(split->body["FunctionName"], "f");
  EXPECT_EQ(split->body["Timeout"], 9);
  EXPECT_EQ(split->body["Code"]["ZipFile"], "");
  EXPECT_FALSE(SplitLargeUpload(raw, {"Code", "ZipFile"}, raw.size() + 1)) << "small: the usual path";
  // A duplicated key: which one counts is the parser's business.
  std::string twice = R"({"ZipFile": ")" + zip + R"(", "ZipFile": "QUJD"})";
  EXPECT_FALSE(SplitLargeUpload(twice, {"ZipFile"}));
  EXPECT_FALSE(SplitLargeUpload(R"({"ZipFile": ")" + zip + R"(", )", {"ZipFile"})) << "malformed";
}

}  // namespace
}  // namespace forklet::api
