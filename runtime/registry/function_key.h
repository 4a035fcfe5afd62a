// Tenants: which account a function belongs to. A function's key names it everywhere inside the
// daemon (registry, scheduler, zygote bank, event queue, ledger, metrics): its name in the default
// account, "ACCOUNT.NAME" in any other. A function name never holds '.', so two accounts' keys
// never collide, and state written before tenants (default account only) reads unchanged.
// Header-only: billing splits its ledger rows by account without depending on the registry.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>

namespace forklet::registry {

// The account of unsigned requests, of access keys without an account_id, and of every function
// created before tenants existed.
inline constexpr const char* kDefaultAccount = "000000000000";

// An AWS account id: 12 digits.
inline bool ValidAccountId(const std::string& account) {
  return account.size() == 12 &&
         std::all_of(account.begin(), account.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The key of NAME in ACCOUNT (a valid account id; NAME a valid function name).
inline std::string FunctionKey(const std::string& account, const std::string& name) {
  return account == kDefaultAccount ? name : account + "." + name;
}

struct KeyParts {
  std::string account;
  std::string name;
};

// The account and name a key stands for.
inline KeyParts SplitFunctionKey(const std::string& key) {
  auto dot = key.find('.');
  if (dot == std::string::npos) return {kDefaultAccount, key};
  return {key.substr(0, dot), key.substr(dot + 1)};
}

inline std::string AccountOf(const std::string& key) { return SplitFunctionKey(key).account; }
inline std::string NameOf(const std::string& key) { return SplitFunctionKey(key).name; }

}  // namespace forklet::registry
