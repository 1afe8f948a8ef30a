// A progress line on a terminal: files, bytes, rate, ETA. Redraws from its own thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "ledger/scanner.h"

namespace ccmon {

class ProgressBar {
 public:
  // Starts drawing to stderr; `progress` must outlive the bar.
  ProgressBar(const ScanProgress* progress, uint64_t total_files, uint64_t total_bytes);
  ~ProgressBar();  // stops and clears the line

 private:
  void Draw(double seconds, bool final);
  const ScanProgress* progress_;
  uint64_t total_files_, total_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ccmon
