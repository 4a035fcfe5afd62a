// The zygote supervisor's loop: a liveness check per period, a reboot when one died.
#include "runtime/core/zygote_supervisor.h"

namespace forklet::core {

ZygoteSupervisor::ZygoteSupervisor(std::function<size_t()> reboot_dead,
                                   std::chrono::milliseconds period)
    : reboot_dead_(std::move(reboot_dead)), period_(period) {
  thread_ = std::thread([this] { Loop(); });
}

ZygoteSupervisor::~ZygoteSupervisor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ZygoteSupervisor::Loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period_, [&] { return stopping_; })) {
    lock.unlock();
    reboot_dead_();  // the check is a poll(2) per zygote; a reboot takes the boot's time
    lock.lock();
  }
}

}  // namespace forklet::core
