// The functions this daemon knows, with their code, persisted in the state dir.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/registry/code_archive.h"
#include "runtime/registry/function.h"

namespace forklet::registry {

// A function as deployed: its configuration and the directory holding its unpacked code
// (read-only once published; a new code revision gets a new directory).
struct Deployed {
  FunctionConfig config;
  std::string code_dir;  // absolute host path
  std::string zip_path;  // the zip as uploaded, for GetFunction's Code.Location
};

// Layout: <state>/functions/<name>/function.json, <state>/functions/<name>/code/<rev>/...,
// <state>/functions/<name>/code/<rev>.zip. Every change is written to a temp name and
// renamed, so a crash leaves the old or the new state, never a mix. Thread-safe.
// UpdateCode keeps the previous revision's directory (instances still running it see it through
// a bind mount, and deleting its files would empty their /var/task) and removes older ones;
// Open keeps only the current one. <state>/registry.lock is flock'ed: one daemon per state dir.
class Registry {
 public:
  // Loads every function found under <state_dir>/functions; removes half-written leftovers.
  static Result<std::unique_ptr<Registry>> Open(const std::string& state_dir,
                                                ArchiveLimits limits = {});

  // Error ops are user-facing: "ResourceConflictException", "InvalidParameterValueException",
  // "ResourceNotFoundException", "CodeStorageExceededException" go in Error::op; message in
  // Error::message.
  Result<Deployed> Create(FunctionConfig config, std::string_view zip);
  Result<Deployed> UpdateCode(const std::string& name, std::string_view zip);
  // Applies the fields present in the JSON body of UpdateFunctionConfiguration (Handler,
  // Runtime, MemorySize, Timeout, Environment.Variables, Description, Role).
  Result<Deployed> UpdateConfiguration(const std::string& name, const nlohmann::json& changes);
  Status Delete(const std::string& name);
  std::optional<Deployed> Get(const std::string& name) const;
  std::vector<Deployed> List() const;  // sorted by name

 private:
  struct Impl;
  explicit Registry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;

 public:
  ~Registry();
};

}  // namespace forklet::registry
