// Signature Version 4: AWS's published test vector, and what a changed request, key or clock gets.
#include "runtime/api/sigv4.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace forklet::api {
namespace {

using std::chrono::system_clock;

system_clock::time_point At(int hour, int minute) {  // 2015-08-30, the vector's day
  std::tm tm{};
  tm.tm_year = 115;
  tm.tm_mon = 7;
  tm.tm_mday = 30;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  return system_clock::from_time_t(timegm(&tm));
}

class SigV4Test : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/forklet-test-state-sigv4-" + std::to_string(getpid()) + ".json";
    Write(R"({"keys": [{"access_key_id": "AKIDEXAMPLE",
                        "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                        "account_id": "111122223333"}]})");
    auto store = CredentialStore::Load(path_);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store_ = std::move(store.value());
  }
  void TearDown() override { unlink(path_.c_str()); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }

  // AWS's "get-vanilla" request of its Signature Version 4 test suite (service "service").
  static HttpRequest Vanilla() {
    HttpRequest r;
    r.method = "GET";
    r.target = "/";
    r.path = "/";
    r.headers["host"] = "example.amazonaws.com";
    r.headers["x-amz-date"] = "20150830T123600Z";
    r.headers["authorization"] =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    return r;
  }
  std::optional<AuthFailure> Verify(const HttpRequest& r, system_clock::time_point now = At(12, 37)) {
    SigV4Verifier v(store_.get(), SigV4Options{{}, "service", std::chrono::seconds(300)});
    return v.Verify(r, now);
  }

  std::string path_;
  std::unique_ptr<CredentialStore> store_;
};

TEST_F(SigV4Test, AwsTestVectorVerifies) {
  auto failure = Verify(Vanilla());
  EXPECT_FALSE(failure.has_value()) << failure->type << ": " << failure->message;
}

TEST_F(SigV4Test, AnyChangeToTheSignedRequestIsRefused) {
  auto body = Vanilla();
  body.body = "x";  // the payload's hash is signed
  auto path = Vanilla();
  path.target = "/other";
  auto query = Vanilla();
  query.target = "/?a=1";
  auto host = Vanilla();
  host.headers["host"] = "evil.example.com";
  for (const auto& r : {body, path, query, host}) {
    auto failure = Verify(r);
    ASSERT_TRUE(failure.has_value());
    EXPECT_EQ(failure->status, 403);
    EXPECT_EQ(failure->type, "InvalidSignatureException");
    EXPECT_EQ(failure->message.find("wJalr"), std::string::npos) << "never a word of the secret";
  }
}

TEST_F(SigV4Test, UnknownKeysMissingSignaturesAndStaleClocksAreRefused) {
  auto unknown = Vanilla();
  unknown.headers["authorization"].replace(unknown.headers["authorization"].find("AKIDEXAMPLE"), 11, "AKIDUNKNOWN");
  EXPECT_EQ(Verify(unknown)->type, "UnrecognizedClientException");
  auto unsigned_request = Vanilla();
  unsigned_request.headers.erase("authorization");
  EXPECT_EQ(Verify(unsigned_request)->type, "MissingAuthenticationTokenException");
  auto late = Verify(Vanilla(), At(12, 42));  // 6 minutes after it was signed: a replay
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->type, "InvalidSignatureException");
  EXPECT_NE(late->message.find("Signature expired"), std::string::npos) << late->message;
  auto early = Verify(Vanilla(), At(12, 30));
  ASSERT_TRUE(early.has_value());
  EXPECT_NE(early->message.find("not yet current"), std::string::npos) << early->message;
  EXPECT_FALSE(Verify(Vanilla(), At(12, 40)).has_value()) << "within the 5 minute window";
}

TEST_F(SigV4Test, DatesNoClockCanMeanAreMalformed) {
  // Found by sigv4_fuzz: year 0001 overflowed system_clock's nanoseconds (undefined behaviour).
  for (const char* date : {"00010101T000000Z", "99991231T235959Z", "19691231T235959Z"}) {
    auto r = Vanilla();
    r.headers["x-amz-date"] = date;
    auto failure = Verify(r);
    ASSERT_TRUE(failure.has_value()) << date;
    EXPECT_EQ(failure->type, "IncompleteSignatureException") << date;
  }
}

TEST_F(SigV4Test, AnotherServiceOrRegionIsRefused) {
  SigV4Verifier lambda(store_.get(), SigV4Options{{}, "lambda", std::chrono::seconds(300)});
  EXPECT_EQ(lambda.Verify(Vanilla(), At(12, 37))->type, "InvalidSignatureException");
  SigV4Verifier eu(store_.get(), SigV4Options{{"eu-west-1"}, "service", std::chrono::seconds(300)});
  auto failure = eu.Verify(Vanilla(), At(12, 37));
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->message.find("region"), std::string::npos);
}

TEST_F(SigV4Test, ABadCredentialsFileKeepsTheKeysInForce) {
  Write("{not json");
  EXPECT_FALSE(store_->Reload().ok());
  EXPECT_FALSE(Verify(Vanilla()).has_value()) << "the old key still works";
  Write(R"({"keys": [{"access_key_id": "AKIDEXAMPLE", "secret_access_key": "short"}]})");
  auto s = store_->Reload();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().ToString().find("secret_access_key"), std::string::npos) << s.error().ToString();
  Write(R"({"keys": [{"access_key_id": "AKIDOTHER", "secret_access_key": "0123456789"}]})");
  ASSERT_TRUE(store_->Reload().ok());
  EXPECT_EQ(Verify(Vanilla())->type, "UnrecognizedClientException") << "a reload drops removed keys";
}

TEST(SigV4Encode, KeepsUnreservedCharactersOnly) {
  EXPECT_EQ(SigV4Encode("a-b_c.d~e/f g:h%3A", true), "a-b_c.d~e/f%20g%3Ah%253A");
  EXPECT_EQ(SigV4Encode("a/b", false), "a%2Fb");
}

}  // namespace
}  // namespace forklet::api
