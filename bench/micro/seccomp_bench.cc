// The seccomp filter: compiling the default policy (once per daemon) and installing it (once per
// instance, in the child, after no_new_privs).
#include <sys/prctl.h>

#include <benchmark/benchmark.h>

#include "bench/micro/forked_timing.h"
#include "sandbox/seccomp_policy.h"

namespace {

using namespace forklet;

void BM_SeccompCompileDefaultPolicy(benchmark::State& state) {
  size_t n = 0;
  for (auto _ : state) {
    auto p = sandbox::CompileDefaultPolicy();
    if (!p) {
      state.SkipWithError(p.error().ToString().c_str());
      return;
    }
    n = p->instructions.size();
  }
  state.counters["bpf_instructions"] = static_cast<double>(n);
}
BENCHMARK(BM_SeccompCompileDefaultPolicy)->Unit(benchmark::kMicrosecond);

void BM_SeccompInstallInChild(benchmark::State& state) {
  auto p = sandbox::CompileDefaultPolicy();
  if (!p) {
    state.SkipWithError(p.error().ToString().c_str());
    return;
  }
  sock_fprog prog = p->fprog();
  for (auto _ : state) {
    double s = micro::TimeInForkedChild([] { prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); },
                                        [&] { return sandbox::InstallSeccompInChild(&prog); });
    if (s < 0) {
      state.SkipWithError("installing the filter failed in the child");
      return;
    }
    state.SetIterationTime(s);
  }
}
BENCHMARK(BM_SeccompInstallInChild)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
