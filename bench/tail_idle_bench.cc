// tail_idle_bench: what the Tailer costs with many files tracked (issue 7 §1, "Idle means no
// CPU") and how soon an append is offered.
//
//   tail_idle_bench [--files 2000] [--idle-seconds 10] [--appends 1000] [--watch inotify|poll]
//
// Creates --files transcripts under a temporary projects/ dir (50 projects, a quarter of the
// files in subagents/ dirs), reads them all, then:
//   1. idle: one Next() with nothing happening for --idle-seconds; prints the CPU time of the
//      calling thread and of the process, as a share of one core, and the RSS;
//   2. latency: --appends times, a writer thread appends one line to a random file and the reader
//      measures the time from the write(2) to Next() returning it; prints p50, p99 and max.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tail/tailer.h"
#include "transcript/line_reader.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t CpuUs(int who) {
  rusage ru;
  ::getrusage(who, &ru);
  return (int64_t(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

long RssKiB() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::strtol(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return kib;
}

bool Append(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, data.data(), data.size()) == ssize_t(data.size());
  ::close(fd);
  return ok;
}

// Reads every offered file's complete lines; returns the number of lines.
size_t ReadWork(ccmon::Tailer& tailer, const std::vector<ccmon::TailWork>& work) {
  size_t lines = 0;
  ccmon::LineBuffer buffer;
  for (const ccmon::TailWork& w : work) {
    std::unique_ptr<ccmon::SequentialFile> file;
    bool same = false;
    if (!ccmon::OpenIfSameFile(ccmon::Env::Default(), w.path, w.identity, w.start_offset, &file,
                               &same)
             .ok() ||
        !same) {
      tailer.Consumed(w, w.start_offset);
      continue;
    }
    ccmon::LineReader reader(file.get(), w.start_offset, {}, &buffer);
    std::string_view line;
    size_t readable;
    while (reader.Next(&line, &readable) == ccmon::LineReader::Result::kLine) ++lines;
    tailer.Consumed(w, reader.consumed_offset(), reader.at_eof());
  }
  return lines;
}

}  // namespace

int main(int argc, char** argv) {
  int files = 2000, idle_seconds = 10, appends = 1000;
  ccmon::WatchMode mode = ccmon::WatchMode::kInotify;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--files") {
      files = std::atoi(value.c_str());
    } else if (flag == "--idle-seconds") {
      idle_seconds = std::atoi(value.c_str());
    } else if (flag == "--appends") {
      appends = std::atoi(value.c_str());
    } else if (flag == "--watch") {
      mode = value == "poll" ? ccmon::WatchMode::kPoll : ccmon::WatchMode::kInotify;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  char tmpl[] = "/tmp/tail_idle_bench_XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string root = std::string(tmpl) + "/projects";
  std::vector<std::string> paths;
  for (int i = 0; i < files; ++i) {
    std::string dir = root + "/project-" + std::to_string(i % 50);
    if (i % 4 == 3) dir += "/session-" + std::to_string(i) + "/subagents";
    std::filesystem::create_directories(dir);
    paths.push_back(dir + "/file-" + std::to_string(i) + ".jsonl");
    Append(paths.back(), "{\"type\":\"user\",\"n\":" + std::to_string(i) + "}\n");
  }

  ccmon::TailerOptions options;
  options.project_dirs = {root};
  options.watch_mode = mode;
  ccmon::Tailer tailer(options, {});
  std::vector<ccmon::TailWork> work;
  size_t lines = 0;
  const auto start = Clock::now();
  while (lines < size_t(files)) {
    tailer.Next(Clock::now() + std::chrono::seconds(5), {}, &work);
    lines += ReadWork(tailer, work);
  }
  const double first_scan_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::printf("watch=%s files=%zu first read of all: %.1f ms, RSS %ld KiB\n", tailer.watch_mode(),
              tailer.files_tracked(), first_scan_ms, RssKiB());

  // 1. Idle.
  const int64_t thread_before = CpuUs(RUSAGE_THREAD), self_before = CpuUs(RUSAGE_SELF);
  const auto idle_start = Clock::now();
  tailer.Next(idle_start + std::chrono::seconds(idle_seconds), {}, &work);
  const double idle_s = std::chrono::duration<double>(Clock::now() - idle_start).count();
  const int64_t thread_us = CpuUs(RUSAGE_THREAD) - thread_before;
  const int64_t self_us = CpuUs(RUSAGE_SELF) - self_before;
  std::printf(
      "idle %.1f s: thread CPU %lld us (%.4f%% of a core), process CPU %lld us "
      "(%.4f%%), RSS %ld KiB, work offered %zu\n",
      idle_s, (long long)thread_us, 100.0 * thread_us / (idle_s * 1e6), (long long)self_us,
      100.0 * self_us / (idle_s * 1e6), RssKiB(), work.size());

  // 2. Latency from append to Next() returning it.
  std::mutex mu;
  std::condition_variable cv;
  bool consumed = true;
  std::atomic<int64_t> written_ns{0};
  std::vector<double> latencies_ms;
  std::thread writer([&] {
    std::mt19937 rng(1);
    for (int i = 0; i < appends; ++i) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return consumed; });
        consumed = false;
      }
      const std::string& path = paths[rng() % paths.size()];
      written_ns.store(Clock::now().time_since_epoch().count());
      Append(path, "{\"type\":\"assistant\",\"i\":" + std::to_string(i) + "}\n");
    }
  });
  for (int got = 0; got < appends;) {
    tailer.Next(Clock::now() + std::chrono::seconds(10), {}, &work);
    if (work.empty()) continue;
    const int64_t now_ns = Clock::now().time_since_epoch().count();
    latencies_ms.push_back(double(now_ns - written_ns.load()) / 1e6);
    got += int(ReadWork(tailer, work));
    std::lock_guard<std::mutex> lock(mu);
    consumed = true;
    cv.notify_one();
  }
  writer.join();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms[std::min(latencies_ms.size() - 1, size_t(p * latencies_ms.size()))];
  };
  std::printf("append -> Next() over %zu appends: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
              latencies_ms.size(), pct(0.50), pct(0.99), latencies_ms.back());
  std::filesystem::remove_all(tmpl);
  return 0;
}
