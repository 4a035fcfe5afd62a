// Signature Version 4 verification and the credentials file; see sigv4.h.
#include "runtime/api/sigv4.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>
#include <vector>

#include <nlohmann/json.hpp>

namespace forklet::api {
namespace {

constexpr const char* kAlgorithm = "AWS4-HMAC-SHA256";

std::string Hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

std::string Hmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// A header value as SigV4 signs it: trimmed, runs of spaces collapsed to one.
std::string CanonicalValue(const std::string& v) {
  std::string out;
  bool space = false;
  for (char c : Trim(v)) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

// "20261206T151749Z" -> time point; nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> ParseAmzDate(const std::string& s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  for (size_t i : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 9u, 10u, 11u, 12u, 13u, 14u})
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  // Years a clock can mean (and system_clock's nanoseconds hold: past 2262 they overflow).
  const int year = std::stoi(s.substr(0, 4));
  if (year < 1970 || year > 2200) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = std::stoi(s.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(6, 2));
  tm.tm_hour = std::stoi(s.substr(9, 2));
  tm.tm_min = std::stoi(s.substr(11, 2));
  tm.tm_sec = std::stoi(s.substr(13, 2));
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::string FormatAmzDate(std::chrono::system_clock::time_point t) {
  time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

AuthFailure Incomplete(const std::string& message) { return {400, "IncompleteSignatureException", message}; }
AuthFailure Invalid(const std::string& message) { return {403, "InvalidSignatureException", message}; }
AuthFailure Mismatch() {
  return Invalid("The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method. Consult the service "
                 "documentation for details.");
}

// The parts of a signature, from the Authorization header or a presigned URL's query.
struct Signed {
  std::string key_id, date, region, service, terminator;
  std::vector<std::string> headers;  // SignedHeaders, as listed
  std::string signature;
  std::string amz_date;
  long expires_s = -1;  // query form only
  bool query = false;
};

std::optional<AuthFailure> ParseCredential(const std::string& credential, Signed* s) {
  auto parts = Split(credential, '/');
  if (parts.size() != 5)
    return Incomplete("Credential should be scoped to a valid region, like us-east-1 (access key "
                      "id/date/region/service/aws4_request).");
  s->key_id = parts[0];
  s->date = parts[1];
  s->region = parts[2];
  s->service = parts[3];
  s->terminator = parts[4];
  return std::nullopt;
}

}  // namespace

std::string Sha256Hex(const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return Hex(out, len);
}

std::string Sha256HexOfFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";  // matches no claimed hash
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = read(fd, buf.data(), buf.size())) > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
  close(fd);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, out, &len);
  EVP_MD_CTX_free(ctx);
  return n < 0 ? std::string() : Hex(out, len);
}

std::string SigV4Encode(const std::string& s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string SigV4Signature(const std::string& secret, const std::string& date, const std::string& region,
                           const std::string& service, const std::string& string_to_sign) {
  std::string key = Hmac(Hmac(Hmac(Hmac("AWS4" + secret, date), region), service), "aws4_request");
  std::string mac = Hmac(key, string_to_sign);
  return Hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

std::optional<AuthFailure> SigV4Verifier::Verify(const HttpRequest& r, std::chrono::system_clock::time_point now,
                                                 AccessKey* who) const {
  const std::string raw_path = r.target.substr(0, r.target.find('?'));
  const std::string raw_query =
      r.target.find('?') == std::string::npos ? "" : r.target.substr(r.target.find('?') + 1);
  // The raw query's pairs, decoded (a presigned URL's signature parameters are among them).
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& pair : Split(raw_query, '&')) {
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    pairs.emplace_back(PercentDecode(pair.substr(0, eq), false),  // SigV4: '+' is itself
                       eq == std::string::npos ? "" : PercentDecode(pair.substr(eq + 1), false));
  }
  auto query_value = [&](const std::string& k) -> std::optional<std::string> {
    for (const auto& [key, value] : pairs)
      if (key == k) return value;
    return std::nullopt;
  };

  Signed s;
  const std::string authorization = r.Header("authorization");
  if (!authorization.empty()) {
    if (authorization.rfind(kAlgorithm, 0) != 0)
      return Incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm.");
    std::map<std::string, std::string> fields;
    for (const auto& item : Split(authorization.substr(strlen(kAlgorithm)), ',')) {
      auto eq = item.find('=');
      if (eq != std::string::npos) fields[Trim(item.substr(0, eq))] = Trim(item.substr(eq + 1));
    }
    for (const char* need : {"Credential", "SignedHeaders", "Signature"})
      if (fields[need].empty())
        return Incomplete(std::string("Authorization header requires '") + need + "' parameter.");
    if (auto e = ParseCredential(fields["Credential"], &s)) return e;
    s.headers = Split(fields["SignedHeaders"], ';');
    s.signature = fields["Signature"];
    s.amz_date = r.Header("x-amz-date");
    if (s.amz_date.empty())
      return Incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  } else if (auto algorithm = query_value("X-Amz-Algorithm")) {
    if (*algorithm != kAlgorithm) return Incomplete("X-Amz-Algorithm must be AWS4-HMAC-SHA256.");
    s.query = true;
    for (const char* need : {"X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Date"})
      if (!query_value(need) || query_value(need)->empty())
        return Incomplete(std::string("AWS query-string parameters must include '") + need + "'.");
    if (auto e = ParseCredential(*query_value("X-Amz-Credential"), &s)) return e;
    s.headers = Split(*query_value("X-Amz-SignedHeaders"), ';');
    s.signature = *query_value("X-Amz-Signature");
    s.amz_date = *query_value("X-Amz-Date");
    s.expires_s = 900;
    if (auto e = query_value("X-Amz-Expires")) {
      char* end = nullptr;
      s.expires_s = std::strtol(e->c_str(), &end, 10);
      if (e->empty() || *end != '\0' || s.expires_s < 1 || s.expires_s > 604800)
        return Incomplete("X-Amz-Expires must be between 1 and 604800 seconds.");
    }
  } else {
    return AuthFailure{403, "MissingAuthenticationTokenException", "Missing Authentication Token"};
  }

  auto key = keys_->Find(s.key_id);
  if (!key) return AuthFailure{403, "UnrecognizedClientException", "The security token included in the request is invalid."};
  if (s.terminator != "aws4_request") return Incomplete("Credential should be scoped with a valid terminator: 'aws4_request'.");
  if (s.service != options_.service)
    return Invalid("Credential should be scoped to correct service: '" + options_.service + "'.");
  if (!options_.regions.empty() && !options_.regions.count(s.region))
    return Invalid("Credential should be scoped to a valid region.");
  auto signed_at = ParseAmzDate(s.amz_date);
  if (!signed_at) return Incomplete("X-Amz-Date must be in the ISO8601 basic format (YYYYMMDD'T'HHMMSS'Z').");
  if (s.amz_date.substr(0, 8) != s.date)
    return Invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.");
  // The clock window: a signature is good for 5 minutes either way (a presigned URL until it expires).
  const auto skew = options_.max_skew;
  if (*signed_at > now + skew)
    return Invalid("Signature not yet current: " + s.amz_date + " is still later than " +
                   FormatAmzDate(now + skew) + " (" + FormatAmzDate(now) + " + 5 min.)");
  const auto last = s.query ? *signed_at + std::chrono::seconds(s.expires_s) : now - skew;
  if (s.query ? now > last : *signed_at < last)
    return Invalid(s.query ? "Signature expired: the presigned URL expired at " + FormatAmzDate(last)
                           : "Signature expired: " + s.amz_date + " is now earlier than " + FormatAmzDate(last) +
                                 " (" + FormatAmzDate(now) + " - 5 min.)");
  bool host_signed = false;
  for (const auto& h : s.headers) host_signed = host_signed || h == "host";
  if (!host_signed) return Invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.");

  // The payload is always signed (botocore signs its hash in both forms; a presigned URL's body is
  // empty): a hash the client claims must be its real hash, and UNSIGNED-PAYLOAD is not taken.
  const std::string body_hash = r.body_file.empty() ? Sha256Hex(r.body) : Sha256HexOfFile(r.body_file);
  std::string payload_hash = r.Header("x-amz-content-sha256");
  if (payload_hash.empty()) {
    payload_hash = body_hash;
  } else if (payload_hash != body_hash) {
    return Invalid("The provided 'x-amz-content-sha256' header does not match what was computed.");
  }

  // The canonical request, as the client built it (botocore: the raw path encoded once more).
  std::vector<std::pair<std::string, std::string>> canonical_pairs;
  for (const auto& [k, v] : pairs)
    if (!(s.query && k == "X-Amz-Signature")) canonical_pairs.emplace_back(SigV4Encode(k, false), SigV4Encode(v, false));
  std::sort(canonical_pairs.begin(), canonical_pairs.end());
  std::string canonical_query;
  for (const auto& [k, v] : canonical_pairs) canonical_query += (canonical_query.empty() ? "" : "&") + k + "=" + v;
  std::string canonical_headers;
  for (const auto& h : s.headers) {
    auto it = r.headers.find(h);
    if (it == r.headers.end()) return Mismatch();  // a signed header that did not arrive
    canonical_headers += h + ":" + CanonicalValue(it->second) + "\n";
  }
  std::string signed_headers;
  for (const auto& h : s.headers) signed_headers += (signed_headers.empty() ? "" : ";") + h;
  const std::string canonical_request = r.method + "\n" + SigV4Encode(raw_path.empty() ? "/" : raw_path, true) +
                                        "\n" + canonical_query + "\n" + canonical_headers + "\n" +
                                        signed_headers + "\n" + payload_hash;
  const std::string scope = s.date + "/" + s.region + "/" + s.service + "/aws4_request";
  const std::string string_to_sign =
      std::string(kAlgorithm) + "\n" + s.amz_date + "\n" + scope + "\n" + Sha256Hex(canonical_request);
  const std::string expected = SigV4Signature(key->secret, s.date, s.region, s.service, string_to_sign);
  if (expected.size() != s.signature.size() ||
      CRYPTO_memcmp(expected.data(), s.signature.data(), expected.size()) != 0)
    return Mismatch();
  if (who) *who = *key;
  return std::nullopt;
}

HttpResponse AuthFailureResponse(const AuthFailure& f) {
  HttpResponse r;
  r.status = f.status;
  r.headers["X-Amzn-ErrorType"] = f.type;
  r.headers["Content-Type"] = "application/json";
  r.body = nlohmann::json{{"Type", "User"}, {"message", f.message}}.dump();
  return r;
}

Result<std::map<std::string, AccessKey>> CredentialStore::Read(const std::string& path) {
  std::ifstream f(path);
  if (!f) return SysError("read the credentials file " + path);
  auto doc = nlohmann::json::parse(f, nullptr, false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    return MakeError("credentials file " + path, "expected {\"keys\": [{\"access_key_id\", \"secret_access_key\", \"account_id\"}, ...]}");
  std::map<std::string, AccessKey> keys;
  size_t n = 0;
  for (const auto& k : doc["keys"]) {
    ++n;
    const std::string where = "credentials file " + path + ", key " + std::to_string(n);
    if (!k.is_object() || !k.value("access_key_id", nlohmann::json()).is_string() ||
        !k.value("secret_access_key", nlohmann::json()).is_string())
      return MakeError(where, "needs \"access_key_id\" and \"secret_access_key\" (strings)");
    if (k.contains("account_id") && !k["account_id"].is_string())
      return MakeError(where, "account_id must be a string of 12 digits");
    if (k.contains("operator") && !k["operator"].is_boolean())
      return MakeError(where, "operator must be true or false");
    AccessKey key{k["access_key_id"], k["secret_access_key"], k.value("account_id", std::string("000000000000")),
                  k.value("operator", false)};
    if (key.id.size() < 4 || key.id.size() > 128 ||
        !std::all_of(key.id.begin(), key.id.end(), [](unsigned char c) { return std::isalnum(c); }))
      return MakeError(where, "access_key_id must be 4 to 128 letters and digits");
    if (key.secret.size() < 8) return MakeError(where, "secret_access_key must have at least 8 characters");
    if (key.account_id.size() != 12 ||
        !std::all_of(key.account_id.begin(), key.account_id.end(), [](unsigned char c) { return std::isdigit(c); }))
      return MakeError(where, "account_id must be 12 digits");
    if (!keys.emplace(key.id, key).second) return MakeError(where, "access_key_id " + key.id + " is listed twice");
  }
  return keys;
}

Result<std::unique_ptr<CredentialStore>> CredentialStore::Load(const std::string& path) {
  std::unique_ptr<CredentialStore> store(new CredentialStore(path));
  if (auto s = store->Reload(); !s) return s.error();
  return store;
}

Status CredentialStore::Reload() {
  auto keys = Read(path_);
  if (!keys) return keys.error();
  std::lock_guard lock(mu_);
  keys_ = std::move(keys.value());
  return {};
}

std::optional<AccessKey> CredentialStore::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

size_t CredentialStore::size() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

}  // namespace forklet::api
