// AWS Signature Version 4 on forklet's HTTP API: the access keys a daemon accepts (a credentials
// file, reloaded on SIGHUP) and the verification of each request's signature, as the aws CLI and
// every AWS SDK sign them (the Authorization header, or the query string of a presigned URL).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "runtime/api/http_server.h"
#include "sandbox/error.h"

namespace forklet::api {

struct AccessKey {
  std::string id;          // AKIA...
  std::string secret;
  std::string account_id;  // the tenant: 12 digits (default 000000000000)
  bool is_operator = false;  // sees and manages every account, as the Unix socket does
};

// The keys of a credentials file (JSON):
//   {"keys": [{"access_key_id": "AKID", "secret_access_key": "...", "account_id": "123456789012"},
//             {"access_key_id": "AKOP", "secret_access_key": "...", "operator": true}]}
// A key's account is the tenant whose functions it sees, invokes, bills and deletes.
// Load and Reload keep the previous keys when the file does not parse or holds a bad entry.
class CredentialStore {
 public:
  static Result<std::unique_ptr<CredentialStore>> Load(const std::string& path);
  Status Reload();  // the file again; on error the keys in force stay
  std::optional<AccessKey> Find(const std::string& id) const;
  size_t size() const;
  const std::string& path() const { return path_; }

 private:
  explicit CredentialStore(std::string path) : path_(std::move(path)) {}
  static Result<std::map<std::string, AccessKey>> Read(const std::string& path);
  const std::string path_;
  mutable std::mutex mu_;
  std::map<std::string, AccessKey> keys_;
};

// Why a request is refused, in Lambda's shape (403 and the error type's own message).
struct AuthFailure {
  int status = 403;
  std::string type;  // MissingAuthenticationTokenException, UnrecognizedClientException, ...
  std::string message;
};

struct SigV4Options {
  std::set<std::string> regions;  // empty: any region
  std::string service = "lambda";
  std::chrono::seconds max_skew{300};
};

class SigV4Verifier {
 public:
  SigV4Verifier(const CredentialStore* keys, SigV4Options options) : keys_(keys), options_(std::move(options)) {}
  // nullopt when the request is signed by a known key, over this exact request, within the clock
  // window; `key` then names who signed it.
  std::optional<AuthFailure> Verify(const HttpRequest& request,
                                    std::chrono::system_clock::time_point now,
                                    AccessKey* key = nullptr) const;

 private:
  const CredentialStore* keys_;
  SigV4Options options_;
};

// The failure as the API answers it: {"Type": "User", "message"} with X-Amzn-ErrorType.
HttpResponse AuthFailureResponse(const AuthFailure& failure);

// The pieces of the algorithm, for tests: SigV4's URI encoding (RFC 3986 unreserved characters
// kept, '/' kept when `keep_slash`), the canonical request and the signature.
std::string SigV4Encode(const std::string& s, bool keep_slash);
std::string SigV4Signature(const std::string& secret, const std::string& date, const std::string& region,
                           const std::string& service, const std::string& string_to_sign);
std::string Sha256Hex(const std::string& data);
// Of a file's bytes, read in 1 MB pieces (a spooled request body); empty if it cannot be read.
std::string Sha256HexOfFile(const std::string& path);

}  // namespace forklet::api
