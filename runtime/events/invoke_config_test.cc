// Event invoke configurations: Lambda's ranges and messages, Put versus Update, persistence.
#include "runtime/events/invoke_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace forklet::events {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

TEST(InvokeConfigTest, RangesPutUpdateDeleteAndPersistence) {
  std::string dir = fs::temp_directory_path() / ("forklet-invokeconfig-" + std::to_string(getpid()));
  fs::remove_all(dir);
  {
    InvokeConfigStore store(dir);
    ASSERT_TRUE(store.Load());
    EXPECT_EQ(store.Effective("f").max_retry_attempts, 2u);
    EXPECT_EQ(store.Effective("f").max_event_age_s, 21600u);
    auto bad = store.Put("f", json{{"MaximumRetryAttempts", 3}}, false);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().op, "InvalidParameterValueException");
    EXPECT_NE(bad.error().message.find("maximumRetryAttempts"), std::string::npos);
    EXPECT_FALSE(store.Put("f", json{{"MaximumEventAgeInSeconds", 59}}, false));
    EXPECT_FALSE(store.Put("f", json{{"MaximumEventAgeInSeconds", 21601}}, false));
    EXPECT_FALSE(store.Put("f", json{{"DestinationConfig", {{"OnFailure", {{"Destination", "arn:aws:sqs:us-east-1:1:q"}}}}}}, false));
    EXPECT_FALSE(store.Get("f"));
    ASSERT_TRUE(store.Put("f", json{{"MaximumRetryAttempts", 0}, {"MaximumEventAgeInSeconds", 60},
                                    {"DestinationConfig", {{"OnSuccess", {{"Destination", "arn:aws:lambda:us-east-1:000000000000:function:ok"}}}}}}, false));
    auto updated = store.Put("f", json{{"MaximumEventAgeInSeconds", 120}}, true);
    ASSERT_TRUE(updated);
    EXPECT_EQ(updated->max_retry_attempts, 0u);
    EXPECT_EQ(updated->max_event_age_s, 120u);
    // Destinations stay in the function's account (tenants, registry/function_key.h).
    auto other = json{{"DestinationConfig", {{"OnSuccess", {{"Destination", "arn:aws:lambda:us-east-1:123456789012:function:ok"}}}}}};
    auto crossing = store.Put("g", other, false);
    ASSERT_FALSE(crossing);
    EXPECT_NE(crossing.error().message.find("same account"), std::string::npos) << crossing.error().message;
    ASSERT_TRUE(store.Put("123456789012.h", other, false));
    EXPECT_EQ(DestinationFunction("arn:aws:lambda:us-east-1:123456789012:function:ok", "123456789012.h"),
              "123456789012.ok");
    EXPECT_EQ(DestinationFunction("arn:aws:lambda:us-east-1:123456789012:function:ok", "h"), "");
    auto put = store.Put("g", json{{"MaximumEventAgeInSeconds", 100}}, false);
    ASSERT_TRUE(put);
    EXPECT_EQ(put->max_retry_attempts, 2u);
  }
  InvokeConfigStore store(dir);
  ASSERT_TRUE(store.Load());
  auto f = store.Get("f");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->max_event_age_s, 120u);
  EXPECT_EQ(DestinationFunction(f->on_success), "ok");
  auto j = ToLambdaJson("f", *f);
  EXPECT_EQ(j["DestinationConfig"]["OnSuccess"]["Destination"], "arn:aws:lambda:us-east-1:000000000000:function:ok");
  EXPECT_EQ(j["DestinationConfig"]["OnFailure"], json::object());
  ASSERT_TRUE(store.Delete("f"));
  EXPECT_FALSE(store.Delete("f"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace forklet::events
