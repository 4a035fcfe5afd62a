// LearnFaultAhead against a real child: the pages it wrote are to be copied, the code pages it
// ran are to be mapped, and nothing it left alone is in the plan.
#include "zygote/fault_ahead.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <vector>

namespace forklet::zygote {
namespace {

constexpr size_t kPage = 4096;

bool InPlan(const FaultAheadPlan& plan, const void* p, bool write) {
  const auto a = reinterpret_cast<uintptr_t>(p) & ~(kPage - 1);
  for (const auto& r : plan.ranges)
    if (a >= r.start && a < r.start + r.pages * kPage) return (r.write != 0) == write;
  return false;
}

// A child that writes pages `written` of `buf`, then says so and sleeps until killed.
pid_t ChildWriting(char* buf, const std::vector<size_t>& written, int ready_fd) {
  pid_t pid = fork();
  if (pid == 0) {
    for (size_t i : written) buf[i * kPage] = 7;
    char c = 1;
    (void)!write(ready_fd, &c, 1);
    for (;;) pause();
  }
  return pid;
}

TEST(FaultAhead, APlanHoldsThePagesTheChildWroteAndNotTheOnesItLeftShared) {
  constexpr size_t kPages = 64;
  auto* buf = static_cast<char*>(mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(buf, MAP_FAILED);
  memset(buf, 1, kPages * kPage);  // every page present here: a child shares them until it writes
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::vector<size_t> written = {3, 4, 5, 40};
  pid_t child = ChildWriting(buf, written, fds[1]);
  ASSERT_GT(child, 0);
  char c;
  ASSERT_EQ(read(fds[0], &c, 1), 1);

  FaultAheadPlan plan;
  int err = LearnFaultAhead(child, &plan);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(fds[0]);
  close(fds[1]);
  ASSERT_EQ(err, 0) << strerror(err);

  for (size_t i = 0; i < kPages; ++i) {
    const bool was_written = std::find(written.begin(), written.end(), i) != written.end();
    EXPECT_EQ(InPlan(plan, buf + i * kPage, true), was_written) << "page " << i;
  }
  // Pages 3-5 are one range: a child populates them in one call.
  int ranges_in_buf = 0;
  for (const auto& r : plan.ranges)
    if (r.start >= reinterpret_cast<uintptr_t>(buf) && r.start < reinterpret_cast<uintptr_t>(buf) + kPages * kPage)
      ++ranges_in_buf;
  EXPECT_EQ(ranges_in_buf, 2);
  // The child ran code (this test's, libc's): those pages are to be mapped, not copied.
  EXPECT_TRUE(InPlan(plan, reinterpret_cast<const void*>(&ChildWriting), false));
  EXPECT_GT(plan.read_pages, 0u);
  EXPECT_LE(plan.write_pages + plan.read_pages, kMaxFaultAheadPages);
  munmap(buf, kPages * kPage);
}

TEST(FaultAhead, AChildThatIsGoneLeavesNoPlan) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);
  FaultAheadPlan plan;
  EXPECT_EQ(LearnFaultAhead(child, &plan), ENOENT);
  EXPECT_TRUE(plan.ranges.empty());
}

}  // namespace
}  // namespace forklet::zygote
