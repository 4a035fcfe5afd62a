// The per-instance mount work the daemon does before a fork: a detached read-only copy of the
// function's code directory (open_tree + mount_setattr), which the child moves onto /var/task.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <benchmark/benchmark.h>

#include "sandbox/template_root.h"

namespace {

void BM_DetachedCodeTree(benchmark::State& state) {
  char tmpl[] = "/tmp/forklet-micro-code-XXXXXX";
  if (!mkdtemp(tmpl)) return state.SkipWithError("mkdtemp");
  std::ofstream(std::string(tmpl) + "/app.py") << "def handler(event, context):\n    return None\n";
  for (auto _ : state) {
    auto fd = forklet::sandbox::DetachedReadOnlyTree(tmpl);
    if (!fd) {
      state.SkipWithError(fd.error().ToString().c_str());
      break;
    }
    close(*fd);  // the detached tree goes with its last fd
  }
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
}
BENCHMARK(BM_DetachedCodeTree)->Unit(benchmark::kMicrosecond);

}  // namespace
