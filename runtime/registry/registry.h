// The functions this daemon knows, with their code, persisted in the state dir.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/registry/code_archive.h"
#include "runtime/registry/code_tree.h"
#include "runtime/registry/function.h"
#include "runtime/registry/layer_store.h"

namespace forklet::registry {

// A function as deployed: its configuration and its code. A copy holds the code tree alive.
struct Deployed {
  FunctionConfig config;
  std::string code_dir;  // absolute host path (code->dir)
  std::string zip_path;  // the zip as uploaded, for GetFunction's Code.Location
  std::shared_ptr<const CodeTree> code;
  // Its layers merged into one tree, mounted read-only at /opt; null when it has none.
  std::shared_ptr<const CodeTree> opt;
};

// An alias: a name for one version of a function (Lambda's CreateAlias).
struct Alias {
  std::string name;              // [A-Za-z0-9_-]{1,128}, not all digits
  std::string function_version;  // "$LATEST" or a published version
  std::string description;
  std::string revision_id;       // changes with every update
};

// What a change may be conditioned on, as Lambda's UpdateFunctionCode/Configuration allow.
struct ChangeOptions {
  std::string expected_revision_id;  // non-empty: PreconditionFailedException unless current
  bool dry_run = false;              // UpdateFunctionCode DryRun: validate, change nothing
};

// Layout: <state>/functions/<name>/function.json (the function's whole record: configuration,
// reserved concurrency, which code tree) and <state>/code/<function_id>-<rev>/... with
// <state>/code/<function_id>-<rev>.zip. Every change is written to a temp name and renamed, so a
// crash leaves the old or the new state, never a mix; a code tree is published before the record
// naming it, and Open removes trees no record names. Thread-safe. State written before code trees
// had their own folder (functions/<name>/code/<rev>) still loads. <state>/registry.lock is
// flock'ed: one daemon per state dir.
class Registry {
 public:
  // Loads every function found under <state_dir>/functions; removes half-written leftovers.
  static Result<std::unique_ptr<Registry>> Open(const std::string& state_dir,
                                                ArchiveLimits limits = {});

  // Error ops are user-facing: "ResourceConflictException", "InvalidParameterValueException",
  // "ResourceNotFoundException", "CodeStorageExceededException" go in Error::op; message in
  // Error::message.
  // "PreconditionFailedException" when ChangeOptions::expected_revision_id is not current.
  Result<Deployed> Create(FunctionConfig config, std::string_view zip);
  // With dry_run: the zip is unpacked aside and checked, and the result is what the function
  // would be; nothing changes.
  Result<Deployed> UpdateCode(const std::string& name, std::string_view zip,
                              const ChangeOptions& options = {});
  // Applies the fields present in the JSON body of UpdateFunctionConfiguration (Handler,
  // Runtime, MemorySize, Timeout, Environment.Variables, Description, Role).
  Result<Deployed> UpdateConfiguration(const std::string& name, const nlohmann::json& changes,
                                       const ChangeOptions& options = {});
  // PutFunctionConcurrency / DeleteFunctionConcurrency (nullopt): persisted before it returns.
  // Not a revision (Lambda's RevisionId does not change), and instances stay.
  Result<Deployed> SetReservedConcurrency(const std::string& name, std::optional<uint32_t> limit);
  Status Delete(const std::string& name);
  std::optional<Deployed> Get(const std::string& name) const;
  std::vector<Deployed> List() const;  // sorted by name

  // Versions. PublishVersion makes an immutable copy of $LATEST's code and configuration,
  // numbered 1, 2, ... (numbers are never reused); with no change since the last version it
  // returns that one. expected_code_sha256 non-empty: InvalidParameterValueException unless
  // $LATEST's code has it. Persisted in the function's record before it returns.
  Result<Deployed> PublishVersion(const std::string& name, const std::string& description,
                                  const std::string& expected_code_sha256,
                                  const ChangeOptions& options = {});
  // $LATEST (or empty), a version number or an alias: the function as that qualifier runs it.
  std::optional<Deployed> Resolve(const std::string& name, const std::string& qualifier) const;
  // $LATEST first, then the versions in order; empty when there is no such function.
  std::vector<Deployed> Versions(const std::string& name) const;
  // ResourceConflictException while an alias names it; ResourceNotFoundException when absent.
  Status DeleteVersion(const std::string& name, const std::string& version);

  // Aliases. create: ResourceConflictException when it exists; else (update) it must exist, and
  // empty fields of `alias` keep their values. The version it names must exist.
  Result<Alias> PutAlias(const std::string& name, const Alias& alias, bool create,
                         const ChangeOptions& options = {});
  Result<Alias> GetAlias(const std::string& name, const std::string& alias) const;
  Result<std::vector<Alias>> ListAliases(const std::string& name) const;  // sorted by name
  Status DeleteAlias(const std::string& name, const std::string& alias);

  // The layers of this state dir (<state>/layers). A function's Layers (Create,
  // UpdateConfiguration) must name live versions of its own account's layers
  // (InvalidParameterValueException otherwise); they are merged into its /opt tree
  // (Deployed::opt, <state>/code/<function_id>-<rev>-opt), which its published versions share.
  LayerStore& Layers();

 private:
  struct Impl;
  explicit Registry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;

 public:
  ~Registry();
};

}  // namespace forklet::registry
