// What every fuzz target shares: a loud failure (libFuzzer keeps the input) and scratch dirs.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <string>

namespace forklet::fuzz {

// The target's name, for failure messages; each target defines it.
extern const char* const kTarget;

[[noreturn]] inline void Fail(const std::string& why) {
  fprintf(stderr, "%s: %s\n", kTarget, why.c_str());
  abort();
}

// A fresh directory below $FORKLET_FUZZ_TMP (run.sh points it into the build tree), else /tmp.
inline std::string TempDir(const char* what) {
  const char* base = getenv("FORKLET_FUZZ_TMP");
  std::string t = std::string(base ? base : "/tmp") + "/forklet-fuzz-" + what + "-XXXXXX";
  if (!mkdtemp(t.data())) Fail("mkdtemp " + t);
  return t;
}

}  // namespace forklet::fuzz
