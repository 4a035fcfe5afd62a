// A log-linear latency histogram (the HdrHistogram layout): exact below 32 us, then 32 linear
// buckets per power of two, so a percentile is within 1/64 (1.6%) of the true value. Memory grows
// with the log of the largest value seen: about 1 KB for sub-millisecond latencies, at most 3.5 KB.
// Not thread-safe; the owner locks.
#pragma once

#include <cstdint>
#include <vector>

namespace forklet::metrics {

class LogHistogram {
 public:
  static constexpr int kSubBits = 5;  // 32 sub-buckets per power of two
  static constexpr uint64_t kMaxUs = (1ull << 32) - 1;  // 71 minutes; larger values clamp here

  void Add(double ms);
  uint64_t count() const { return count_; }
  double max_ms() const { return max_ms_; }
  double min_ms() const { return count_ ? min_ms_ : 0; }
  double sum_ms() const { return sum_ms_; }
  // The value below which a fraction p (0..1] of the samples lie: the middle of the bucket holding
  // that rank, clamped to the observed min and max. 0 when empty.
  double Percentile(double p) const;

  struct Bucket {
    double lo_ms, hi_ms;
    uint64_t count;
  };
  std::vector<Bucket> NonEmptyBuckets() const;
  void Merge(const LogHistogram& other);

  // Bucket arithmetic, exposed for tests: index of a value in microseconds, and a bucket's range.
  static uint32_t IndexOf(uint64_t us);
  static uint64_t LowerUs(uint32_t index);
  static uint64_t UpperUs(uint32_t index);  // exclusive

 private:
  std::vector<uint32_t> counts_;
  uint64_t count_ = 0;
  double sum_ms_ = 0;
  double min_ms_ = 0;
  double max_ms_ = 0;
};

}  // namespace forklet::metrics
