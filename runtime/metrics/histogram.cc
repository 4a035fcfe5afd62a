// A log-linear latency histogram (the HdrHistogram layout): exact below 32 us, then 32 linear
#include "runtime/metrics/histogram.h"

#include <algorithm>
#include <cmath>

namespace forklet::metrics {

namespace {
constexpr uint32_t kSub = 1u << LogHistogram::kSubBits;
}

uint32_t LogHistogram::IndexOf(uint64_t us) {
  if (us > kMaxUs) us = kMaxUs;
  if (us < kSub) return static_cast<uint32_t>(us);
  int msb = 63 - __builtin_clzll(us);
  int shift = msb - kSubBits;
  return kSub + static_cast<uint32_t>(shift) * kSub + static_cast<uint32_t>((us >> shift) - kSub);
}

uint64_t LogHistogram::LowerUs(uint32_t index) {
  if (index < kSub) return index;
  uint32_t shift = (index - kSub) / kSub, sub = (index - kSub) % kSub;
  return static_cast<uint64_t>(kSub + sub) << shift;
}

uint64_t LogHistogram::UpperUs(uint32_t index) {
  if (index < kSub) return index + 1;
  return LowerUs(index) + (1ull << ((index - kSub) / kSub));
}

void LogHistogram::Add(double ms) {
  if (!(ms >= 0)) ms = 0;  // also NaN
  uint64_t us = static_cast<uint64_t>(std::llround(std::min(ms * 1000.0, static_cast<double>(kMaxUs))));
  uint32_t i = IndexOf(us);
  if (i >= counts_.size()) counts_.resize(i + 1, 0);
  counts_[i]++;
  if (count_ == 0 || ms < min_ms_) min_ms_ = ms;
  if (ms > max_ms_) max_ms_ = ms;
  count_++;
  sum_ms_ += ms;
}

double LogHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(std::clamp(p, 0.0, 1.0) * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  if (rank == 1) return min_ms_;  // the extremes are known exactly
  if (rank >= count_) return max_ms_;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      // One-microsecond buckets hold one (rounded) value; wider ones answer their middle.
      uint64_t lo = LowerUs(i), hi = UpperUs(i);
      double mid = hi - lo == 1 ? static_cast<double>(lo) / 1000.0
                                : static_cast<double>(lo + hi) / 2000.0;
      return std::clamp(mid, min_ms_, max_ms_);
    }
  }
  return max_ms_;
}

std::vector<LogHistogram::Bucket> LogHistogram::NonEmptyBuckets() const {
  std::vector<Bucket> out;
  for (uint32_t i = 0; i < counts_.size(); ++i)
    if (counts_[i])
      out.push_back({static_cast<double>(LowerUs(i)) / 1000.0, static_cast<double>(UpperUs(i)) / 1000.0,
                     counts_[i]});
  return out;
}

void LogHistogram::Merge(const LogHistogram& other) {
  if (other.count_ == 0) return;
  if (other.counts_.size() > counts_.size()) counts_.resize(other.counts_.size(), 0);
  for (size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ms_ = count_ ? std::min(min_ms_, other.min_ms_) : other.min_ms_;
  max_ms_ = std::max(max_ms_, other.max_ms_);
  count_ += other.count_;
  sum_ms_ += other.sum_ms_;
}

}  // namespace forklet::metrics
