// The JSON recognizer agrees with nlohmann on ordinary texts and accepts numbers of any size.
#include "runtime/api/json_text.h"

#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

namespace forklet::api {
namespace {

TEST(JsonTextTest, AgreesWithAParserOnOrdinaryTexts) {
  for (const char* t : {"{}", "[]", "0", "-1.5e+3", "\"a\\u00e9\\n\"", "true", " null ",
                        R"({"a": [1, {"b": null}, "x"], "c": {}})", "[[[[]]]]", "\"\xc3\xa9\"",
                        "\"\xf0\x9f\x98\x80\""}) {
    EXPECT_TRUE(IsJsonText(t)) << t;
    EXPECT_TRUE(nlohmann::json::accept(t)) << t;
  }
  for (const char* t : {"", "{", "[1,]", "{\"a\"}", "{\"a\":}", "01", "1.", ".5", "+1", "1e",
                        "nul", "[1] 2", "\"\x01\"", "\"\\x\"", "\"\\u12\"", "{'a': 1}",
                        "\"\xc3\"", "\"\xed\xa0\x80\"", "\"\xff\"", "[}", "{]", "{\"a\":1,}"}) {
    EXPECT_FALSE(IsJsonText(t)) << t;
    EXPECT_FALSE(nlohmann::json::accept(t)) << t;
  }
}

TEST(JsonTextTest, NumbersOfAnySizeAreValid) {
  EXPECT_TRUE(IsJsonText(R"({"x": 1e400})"));
  EXPECT_TRUE(IsJsonText(R"({"x": -1E-400})"));
  EXPECT_TRUE(IsJsonText("{\"x\": " + std::string(5000, '7') + "}"));
  EXPECT_TRUE(IsJsonText("0." + std::string(5000, '3')));
}

TEST(JsonTextTest, DeepNestingCostsNoStack) {
  std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  EXPECT_TRUE(IsJsonText(deep));
  EXPECT_FALSE(IsJsonText(deep + "]"));
}

}  // namespace
}  // namespace forklet::api
