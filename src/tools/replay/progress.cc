#include "tools/replay/progress.h"

#include <chrono>
#include <cstdio>

namespace ccmon {

ProgressBar::ProgressBar(const ScanProgress* progress, uint64_t total_files, uint64_t total_bytes)
    : progress_(progress), total_files_(total_files), total_bytes_(total_bytes) {
  thread_ = std::thread([this] {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    Draw(0, false);  // at once, so that even a short run shows what it read
    while (!cv_.wait_for(lock, std::chrono::milliseconds(150), [this] { return stop_; })) {
      Draw(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), false);
    }
  });
}

ProgressBar::~ProgressBar() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

void ProgressBar::Draw(double secs, bool) {
  uint64_t files = progress_->files_done.load(), bytes = progress_->bytes_done.load();
  double frac = total_bytes_ ? double(bytes) / double(total_bytes_) : 1.0;
  if (frac > 1) frac = 1;
  const int width = 24;
  char bar[width + 1];
  int filled = int(frac * width);
  for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
  bar[width] = 0;
  double rate = secs > 0 ? double(bytes) / secs / 1e6 : 0;
  double eta = rate > 0 ? (double(total_bytes_ - std::min(bytes, total_bytes_)) / 1e6) / rate : 0;
  std::fprintf(stderr, "\r\033[K[%s] %llu/%llu files  %.0f/%.0f MB  %.0f MB/s  ETA %.1fs", bar,
               (unsigned long long)files, (unsigned long long)total_files_, double(bytes) / 1e6,
               double(total_bytes_) / 1e6, rate, eta);
  std::fflush(stderr);
}

}  // namespace ccmon
