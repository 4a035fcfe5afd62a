// Cgroups created ahead of time by a background thread, so an invocation only sets limits.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "sandbox/cgroup.h"

namespace forklet::sandbox {
namespace {

// Process-wide, so that two pools on one tree never pick the same name.
std::atomic<uint64_t> next_cgroup_number{0};

constexpr std::chrono::milliseconds kFirstRetry{100}, kLastRetry{5000};

// "p<counter>-<pid>": unique in this process and against a predecessor with another pid. A name
// that exists anyway (a predecessor with our pid whose leftovers were not removed) is skipped.
Result<std::unique_ptr<Cgroup>> CreateFresh(CgroupTree* tree) {
  for (int attempt = 0;; ++attempt) {
    std::string name = "p" + std::to_string(next_cgroup_number++) + "-" + std::to_string(getpid());
    auto cg = tree->Create(name);
    if (cg.ok() || cg.error().err != EEXIST || attempt == 8) return cg;
  }
}

}  // namespace

struct CgroupPool::Impl {
  CgroupTree* tree;
  size_t target;
  std::mutex mu;
  std::condition_variable wake;  // the filler: a cgroup was taken, or stop
  std::deque<std::unique_ptr<Cgroup>> ready;
  bool stop = false;
  std::thread filler;

  void Fill() {
    auto retry_after = kFirstRetry;
    std::unique_lock lock(mu);
    for (;;) {
      wake.wait(lock, [&] { return stop || ready.size() < target; });
      if (stop) return;
      lock.unlock();
      auto cg = CreateFresh(tree);  // mkdir outside the lock: Acquire never waits for it
      lock.lock();
      if (cg.ok()) {
        ready.push_back(std::move(cg.value()));
        retry_after = kFirstRetry;
        continue;
      }
      // Failing (e.g. a descendants limit): back off; Acquire creates inline and reports why.
      wake.wait_for(lock, retry_after, [&] { return stop; });
      retry_after = std::min(retry_after * 2, kLastRetry);
    }
  }
};

CgroupPool::CgroupPool(CgroupTree* tree, size_t target) : impl_(std::make_unique<Impl>()) {
  impl_->tree = tree;
  impl_->target = target;
  if (target > 0) impl_->filler = std::thread([impl = impl_.get()] { impl->Fill(); });
}

CgroupPool::~CgroupPool() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->wake.notify_all();
  if (impl_->filler.joinable()) impl_->filler.join();
  impl_->ready.clear();  // each destructor kills nothing (never used) and removes the directories
}

Result<std::unique_ptr<Cgroup>> CgroupPool::Acquire(const CgroupLimits& limits) {
  std::unique_ptr<Cgroup> cg;
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->ready.empty()) {
      cg = std::move(impl_->ready.front());
      impl_->ready.pop_front();
    }
  }
  impl_->wake.notify_one();
  if (!cg) {
    auto fresh = CreateFresh(impl_->tree);
    if (!fresh) return fresh.error();
    cg = std::move(fresh.value());
  }
  if (auto s = cg->SetLimits(limits); !s) return s.error();  // cg's destructor removes it
  return cg;
}

}  // namespace forklet::sandbox
