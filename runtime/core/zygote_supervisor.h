// Watches the zygotes from a thread of its own and reboots one that died (killed, crashed) right
// away, so that a dead zygote costs one cold boot in the background instead of the next request.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>

namespace forklet::core {

class ZygoteSupervisor {
 public:
  // Every `period`, calls reboot_dead (Launcher::RebootDeadZygotes: finds the zygotes that died
  // and boots their successors, returning how many) on the supervisor's thread.
  ZygoteSupervisor(std::function<size_t()> reboot_dead, std::chrono::milliseconds period);
  ~ZygoteSupervisor();  // stops the thread; a reboot under way finishes first
  ZygoteSupervisor(const ZygoteSupervisor&) = delete;
  ZygoteSupervisor& operator=(const ZygoteSupervisor&) = delete;

 private:
  void Loop();

  std::function<size_t()> reboot_dead_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace forklet::core
