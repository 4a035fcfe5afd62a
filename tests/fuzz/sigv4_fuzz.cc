// Fuzzes Signature V4 verification as forkletd runs it on every TCP request: the input is split
// into an Authorization header, an X-Amz-Date, an X-Amz-Content-Sha256, the request target (path and
// query, where a presigned URL's parameters are) and the body. Whatever arrives, Verify answers a
// refusal in Lambda's shape (400 or 403, a type and a message that never holds the secret), and
// never accepts a request that the secret did not sign.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "runtime/api/sigv4.h"
#include "tests/fuzz/fuzz_util.h"

namespace forklet::fuzz {
const char* const kTarget = "sigv4_fuzz";
}  // namespace forklet::fuzz

namespace {
using forklet::fuzz::Fail;
using namespace forklet;

constexpr const char* kSecret = "fuzz-secret-0123456789";

const api::CredentialStore& Keys() {
  static api::CredentialStore* keys = [] {
    std::string path = forklet::fuzz::TempDir("sigv4") + "/keys.json";
    std::ofstream(path) << R"({"keys": [{"access_key_id": "AKIDFUZZ", "secret_access_key": ")" << kSecret
                        << R"(", "account_id": "123456789012"}]})";
    auto loaded = api::CredentialStore::Load(path);
    if (!loaded) Fail(loaded.error().ToString());
    return loaded.value().release();
  }();
  return *keys;
}

// The next field of the input, up to a newline (the last field takes the rest).
std::string Next(const uint8_t*& p, const uint8_t* end, bool last = false) {
  const uint8_t* start = p;
  while (p < end && (last || *p != '\n')) ++p;
  std::string out(reinterpret_cast<const char*>(start), static_cast<size_t>(p - start));
  if (p < end) ++p;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  api::HttpRequest r;
  r.method = "POST";
  std::string authorization = Next(p, end);
  std::string date = Next(p, end);
  std::string content_sha = Next(p, end);
  r.target = Next(p, end);
  r.body = Next(p, end, true);
  if (r.target.empty() || r.target[0] != '/') r.target = "/" + r.target;
  r.path = api::PercentDecode(r.target.substr(0, r.target.find('?')), false);
  r.headers["host"] = "127.0.0.1:9000";
  if (!authorization.empty()) r.headers["authorization"] = authorization;
  if (!date.empty()) r.headers["x-amz-date"] = date;
  if (!content_sha.empty()) r.headers["x-amz-content-sha256"] = content_sha;

  api::SigV4Verifier verifier(&Keys(), api::SigV4Options{});
  api::AccessKey who;
  // A fixed clock near the seeds' dates, so that dates inside the window are reachable.
  auto now = std::chrono::system_clock::from_time_t(1765000000);  // 2025-12-06T05:46:40Z
  auto refused = verifier.Verify(r, now, &who);
  if (!refused) {
    // Accepted: only a real signature by the secret can get here; libFuzzer cannot forge HMAC, so
    // an acceptance means the check was skipped.
    Fail("accepted a request: authorization '" + authorization + "' target '" + r.target + "'");
  }
  if (refused->status != 400 && refused->status != 403) Fail("status " + std::to_string(refused->status));
  if (refused->type.empty() || refused->message.empty()) Fail("a refusal without type or message");
  if (refused->message.find(kSecret) != std::string::npos) Fail("the secret in a message");
  auto response = api::AuthFailureResponse(*refused);
  if (response.body.empty() || response.headers["X-Amzn-ErrorType"] != refused->type)
    Fail("the response does not carry the refusal");
  return 0;
}
