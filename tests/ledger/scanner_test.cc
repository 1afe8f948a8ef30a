// Scanner: files -> one Ledger, in parallel (docs/accounting.md A4, A5, A11, A16, A18, A36).
#include "ledger/scanner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "base/fnv1a.h"
#include "base/timeutil.h"
#include "base/timezone.h"
#include "testing/fault_env.h"
#include "testing/mem_env.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

using testing_util::DumpLedger;
using testing_util::FaultEnv;
using testing_util::FaultOp;
using testing_util::Line;
using testing_util::MemEnv;
using testing_util::Msg;
using testing_util::TempDir;
using testing_util::WriteFile;

std::string Iso(int64_t ms) {
  int64_t day = FloorDiv(ms, 86400000);
  int64_t rem = ms - day * 86400000;
  int y;
  unsigned m, d;
  CivilFromDays(day, &y, &m, &d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, int(rem / 3600000),
                int(rem / 60000 % 60), int(rem / 1000 % 60), int(rem % 1000));
  return buf;
}

Msg At(const std::string& id, int64_t ms, const std::string& session = "sess-1") {
  Msg m;
  m.id = id;
  m.request_id = "req_" + id;
  m.timestamp = Iso(ms);
  m.session = session;
  m.cwd = "/Users/x/app";
  m.model = "claude-sonnet-4-5-20250929";
  return m;
}

constexpr int64_t kT0 = 1759040243678;  // 2025-09-28T06:17:23.678Z
constexpr int64_t kDay = 86400000;

class ScannerTest : public ::testing::Test {
 protected:
  std::string root() { return tmp_ / "projects"; }
  std::vector<TranscriptFile> List() {
    std::vector<std::string> warnings;
    auto files = ListTranscripts({root()}, &warnings);
    EXPECT_TRUE(warnings.empty());
    return files;
  }
  // Three real-shaped files with copies, bad lines and an unfinished last line.
  void WriteSmallProject() {
    Msg m1 = At("m1", kT0);
    m1.output = 2;
    m1.tools = {{"toolu_1", "Read"}};
    Msg m1_final = m1;
    m1_final.output = 136;
    std::string f1;
    f1 +=
        R"J({"parentUuid":null,"isSidechain":false,"cwd":"/Users/x/app","sessionId":"sess-1","type":"user","message":{"role":"user","content":"fix it"},"uuid":"u1","timestamp":"2025-09-28T06:17:20.153Z"})J"
        "\n";
    f1 += Line(m1) + "\n";
    f1 += Line(m1_final) + "\n";
    f1 += "garbage\n";
    f1 += "\n";
    f1 += Line(At("m2", kT0 + 3600000)) + "\n";
    f1 +=
        R"J({"type":"assistant","message":{"id":"mx","usage":{"input_tokens":-1}},"timestamp":"2025-09-28T06:17:20.153Z"})J"
        "\n";
    f1 += "[1,2]\n";
    f1 += R"J({"type":"assistant","mess)J";  // still being written
    WriteFile(root() + "/-Users-x-app/sess-1.jsonl", f1);

    Msg resumed_copy = m1_final;
    resumed_copy.session = "sess-2";
    resumed_copy.timestamp = Iso(kT0 + kDay);
    Msg synthetic = At("m_err", kT0 + kDay, "sess-2");
    synthetic.request_id.reset();
    synthetic.model = "<synthetic>";
    synthetic.api_error = true;
    std::string f2 = Line(resumed_copy) + "\n" + Line(At("m3", kT0 + kDay, "sess-2")) + "\n" +
                     Line(synthetic) + "\n";
    WriteFile(root() + "/-Users-x-app/sess-2.jsonl", f2);

    Msg sub = At("m4", kT0 + 60000);
    sub.sidechain = true;
    std::string f3 = Line(sub) + "\n";
    f3 +=
        R"J({"type":"assistant","message":{"model":"claude-x","usage":{"input_tokens":1}},"timestamp":"2025-09-28T06:17:20.153Z"})J"
        "\n";
    f3 +=
        R"J({"type":"assistant","message":{"id":"my","usage":{"input_tokens":1}},"timestamp":"28/09/2025"})J"
        "\n";
    f3 += "{\"type\":\"user\",\"x\":\"\xff\xfe\"}\n";
    WriteFile(root() + "/-Users-x-app/sess-1/subagents/agent-a.jsonl", f3);
  }
  TempDir tmp_;
};

ScanOptions Threads(unsigned n) {
  ScanOptions o;
  o.threads = n;
  return o;
}

TEST_F(ScannerTest, A11_BadLinesAreCountedByReasonAndNeverStopAFile) {
  WriteSmallProject();
  auto files = List();
  ASSERT_EQ(files.size(), 3u);
  ScanResult r = ScanFiles(files, Threads(1), nullptr);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.files, 3u);
  EXPECT_EQ(r.files_skipped, 0u);
  EXPECT_EQ(r.lines, 8u + 3u + 4u);
  EXPECT_EQ(r.usage_lines, 3u + 3u + 1u);
  uint64_t bytes = 0;
  for (const auto& f : files) bytes += f.size;
  EXPECT_EQ(r.bytes, bytes);
  const auto& s = r.skipped.by_reason;
  EXPECT_EQ(s[int(SkipReason::kEmpty)], 1u);
  EXPECT_EQ(s[int(SkipReason::kInvalidJson)], 1u);
  EXPECT_EQ(s[int(SkipReason::kInvalidUtf8)], 1u);
  EXPECT_EQ(s[int(SkipReason::kNotObject)], 1u);
  EXPECT_EQ(s[int(SkipReason::kBadUsage)], 1u);
  EXPECT_EQ(s[int(SkipReason::kMissingId)], 1u);
  EXPECT_EQ(s[int(SkipReason::kBadTimestamp)], 1u);
  EXPECT_EQ(s[int(SkipReason::kTooLong)], 0u);
  EXPECT_EQ(s[int(SkipReason::kIncomplete)], 1u);
  EXPECT_EQ(r.skipped.total(), 8u);
  // m2 comes after two bad lines in its file and still counts.
  EXPECT_EQ(r.ledger.requests().size(), 4u);
  EXPECT_EQ(r.ledger.api_errors().size(), 1u);
  EXPECT_EQ(r.ledger.sessions().size(), 2u);
  EXPECT_EQ(r.ledger.tool_uses().size(), 1u);
}

TEST_F(ScannerTest, A4_UnfinishedLastLineIsIncompleteNotCounted) {
  WriteFile(root() + "/p/s.jsonl", Line(At("m1", kT0)) + "\n" + Line(At("m2", kT0)));
  ScanResult r = ScanFiles(List(), Threads(1), nullptr);
  EXPECT_EQ(r.lines, 1u);
  EXPECT_EQ(r.usage_lines, 1u);
  EXPECT_EQ(r.ledger.requests().size(), 1u);
  EXPECT_EQ(r.skipped.by_reason[int(SkipReason::kIncomplete)], 1u);
  EXPECT_EQ(r.bytes, List()[0].size);
}

TEST_F(ScannerTest, A16_CopiesAcrossFilesAreOneRequestWithMaxTokens) {
  WriteSmallProject();
  ScanResult r = ScanFiles(List(), Threads(1), nullptr);
  const Ledger& l = r.ledger;
  bool found = false;
  for (uint32_t i = 0; i < l.requests().size(); ++i) {
    if (l.request_key(i) != Ledger::DedupKey("m1", true, "req_m1")) continue;
    found = true;
    EXPECT_EQ(l.requests()[i].tokens.output, 136u);
    EXPECT_EQ(l.strings().Get(l.requests()[i].session), "sess-1");  // the earliest copy
    EXPECT_EQ(l.requests()[i].timestamp_ms, kT0);
  }
  EXPECT_TRUE(found);
}

TEST_F(ScannerTest, A18_ThreadCountDoesNotChangeTheResult) {
  WriteSmallProject();
  // Sixteen more files sharing keys in every pattern: copies with growing output, sidechain
  // copies, resumed copies in later sessions, distinct requests and tool uses.
  for (int f = 0; f < 16; ++f) {
    std::string content;
    for (int k = 0; k < 40; ++k) {
      Msg m = At("k" + std::to_string((f * 7 + k) % 50), kT0 + int64_t(k % 13) * 60000 + f * 1000,
                 "sess-f" + std::to_string(f % 5));
      m.output = uint64_t(1 + (f * 31 + k * 17) % 400);
      m.cache_read = uint64_t((f + k) % 3 == 0 ? 1000 * k : 0);
      m.sidechain = (f + k) % 4 == 0;
      m.cwd = "/Users/x/p" + std::to_string(k % 3);
      m.tools = {{"toolu_" + std::to_string(k % 23), k % 2 ? "Read" : "Bash"}};
      if (k % 11 == 0) m.request_id.reset();
      content += Line(m) + "\n";
      if (k % 9 == 0) content += "not json\n";
    }
    WriteFile(root() + "/-Users-x-p" + std::to_string(f % 3) + "/f" + std::to_string(f) + ".jsonl",
              content);
  }
  auto files = List();
  ASSERT_EQ(files.size(), 19u);
  ScanResult one = ScanFiles(files, Threads(1), nullptr);
  const std::string want = DumpLedger(one.ledger);
  EXPECT_GT(one.ledger.requests().size(), 50u);
  for (unsigned threads : {2u, 4u, 8u, 0u}) {
    for (int round = 0; round < 3; ++round) {
      ScanResult r = ScanFiles(files, Threads(threads), nullptr);
      ASSERT_EQ(DumpLedger(r.ledger), want) << threads << " threads";
      EXPECT_EQ(r.skipped.by_reason, one.skipped.by_reason);
      EXPECT_EQ(r.lines, one.lines);
      EXPECT_EQ(r.usage_lines, one.usage_lines);
      EXPECT_EQ(r.bytes, one.bytes);
      EXPECT_EQ(r.files, one.files);
    }
  }
  // File order does not matter either.
  std::vector<TranscriptFile> reversed(files.rbegin(), files.rend());
  EXPECT_EQ(DumpLedger(ScanFiles(reversed, Threads(3), nullptr).ledger), want);
}

// Big files are read as pieces in parallel; a piece owns the lines that start in it. Whatever
// the piece size (down to 1 byte: pieces start inside lines, on '\n', on empty lines), the
// result equals reading the files whole, including bad lines, long lines and the unfinished tail.
TEST_F(ScannerTest, A5_PiecesOfBigFilesGiveTheSameResultAsWholeFiles) {
  WriteSmallProject();
  std::string big;
  for (int k = 0; k < 60; ++k) {
    Msg m = At("p" + std::to_string(k % 25), kT0 + int64_t(k) * 1000, "sess-big");
    m.output = uint64_t(1 + k);
    m.tools = {{"toolu_p" + std::to_string(k % 7), "Grep"}};
    big += Line(m) + "\n";
    if (k % 10 == 0) big += "\n";
    if (k % 13 == 0) big += "garbage " + std::string(size_t(k * 37), 'x') + "\n";
  }
  big += R"J({"type":"assistant","message":{"id":"unfinished")J";
  WriteFile(root() + "/-Users-x-app/big.jsonl", big);
  auto files = List();
  // With a small cap, lines over it (the long garbage lines) cross piece boundaries too.
  for (size_t cap : {size_t(64) << 20, size_t(500)}) {
    ScanOptions whole = Threads(1);
    whole.max_line_bytes = cap;
    ScanResult want = ScanFiles(files, whole, nullptr);
    const std::string dump = DumpLedger(want.ledger);
    if (cap == 500) {
      EXPECT_GT(want.skipped.by_reason[int(SkipReason::kTooLong)], 0u);
    }
    for (uint64_t piece : {1u, 2u, 3u, 7u, 64u, 333u, 1000u, 4096u}) {
      for (unsigned threads : {1u, 2u, 3u}) {
        ScanOptions o = Threads(threads);
        o.max_line_bytes = cap;
        o.piece_bytes = piece;
        ScanResult r = ScanFiles(files, o, nullptr);
        ASSERT_EQ(DumpLedger(r.ledger), dump) << "piece " << piece << ", " << threads << " threads";
        EXPECT_EQ(r.skipped.by_reason, want.skipped.by_reason) << piece << " cap " << cap;
        EXPECT_EQ(r.lines, want.lines) << piece;
        EXPECT_EQ(r.usage_lines, want.usage_lines) << piece;
        EXPECT_EQ(r.bytes, want.bytes) << piece;
        EXPECT_EQ(r.files, want.files) << piece;
      }
    }
    EXPECT_EQ(want.skipped.by_reason[int(SkipReason::kIncomplete)], 2u);
  }
}

TEST_F(ScannerTest, A36_FilesModifiedBeforeTheThresholdAreNotOpened) {
  WriteFile(root() + "/p/old.jsonl", Line(At("m_old", kT0)) + "\n");  // a line newer than its mtime
  WriteFile(root() + "/p/new.jsonl", Line(At("m_new", kT0)) + "\n");
  testing_util::SetMtimeMs(root() + "/p/old.jsonl", kT0 - 10 * kDay);
  testing_util::SetMtimeMs(root() + "/p/new.jsonl", kT0 + 1000);
  auto files = List();
  ScanOptions o = Threads(2);
  o.skip_modified_before_ms = kT0 - kDay;
  ScanProgress progress;
  ScanResult r = ScanFiles(files, o, &progress);
  EXPECT_EQ(r.files_skipped, 1u);
  EXPECT_EQ(r.files, 1u);
  ASSERT_EQ(r.ledger.requests().size(), 1u);
  EXPECT_EQ(r.ledger.request_key(0), Ledger::DedupKey("m_new", true, "req_m_new"));
  EXPECT_EQ(progress.files_done.load(), 2u);
  EXPECT_EQ(progress.bytes_done.load(), files[0].size + files[1].size);
  // A file modified exactly at the threshold is opened.
  o.skip_modified_before_ms = kT0 + 1000;
  EXPECT_EQ(ScanFiles(files, o, nullptr).files, 1u);
  o.skip_modified_before_ms = kT0 - 10 * kDay;
  EXPECT_EQ(ScanFiles(files, o, nullptr).files, 2u);
}

TEST_F(ScannerTest, A36_A17_EveryCopyOfAReadFileIsKeptWhateverItsTime) {
  // The scanner has no time window: a window applies to deduplicated requests, at their
  // preferred copy's time (A18), so a copy written long before the threshold still merges into
  // its request (here it carries the larger output).
  Msg early = At("m1", kT0 - 5 * kDay);
  early.output = 100;
  Msg late = At("m1", kT0 + 1000);
  late.output = 5;
  WriteFile(root() + "/p/s.jsonl", Line(early) + "\n" + Line(late) + "\n");
  testing_util::SetMtimeMs(root() + "/p/s.jsonl", kT0 + 2000);
  ScanOptions o = Threads(1);
  o.skip_modified_before_ms = kT0;
  ScanResult r = ScanFiles(List(), o, nullptr);
  EXPECT_EQ(r.usage_lines, 2u);
  ASSERT_EQ(r.ledger.requests().size(), 1u);
  EXPECT_EQ(r.ledger.requests()[0].tokens.output, 100u);
  EXPECT_EQ(r.ledger.requests()[0].timestamp_ms, kT0 - 5 * kDay);
}

TEST_F(ScannerTest, A5_LinesOverTheCapAreTooLong) {
  Msg big = At("m_big", kT0);
  std::string big_line = Line(big);
  big_line.insert(big_line.find("Let me look"), std::string(5000, 'x'));
  WriteFile(root() + "/p/s.jsonl",
            Line(At("m1", kT0)) + "\n" + big_line + "\n" + Line(At("m2", kT0)) + "\n");
  ScanOptions o = Threads(1);
  o.max_line_bytes = 4096;
  ScanResult r = ScanFiles(List(), o, nullptr);
  EXPECT_EQ(r.skipped.by_reason[int(SkipReason::kTooLong)], 1u);
  EXPECT_EQ(r.lines, 3u);
  EXPECT_EQ(r.usage_lines, 2u);
  EXPECT_EQ(r.ledger.requests().size(), 2u);
  // With the default cap the line counts.
  EXPECT_EQ(ScanFiles(List(), Threads(1), nullptr).ledger.requests().size(), 3u);
}

TEST_F(ScannerTest, UnreadableFileIsReportedAndOthersStillCount) {
  WriteFile(root() + "/p/s.jsonl", Line(At("m1", kT0)) + "\n");
  auto files = List();
  TranscriptFile gone;
  gone.path = root() + "/p/deleted.jsonl";
  gone.size = 10;
  gone.mtime_ms = kT0;
  files.push_back(gone);
  ScanResult r = ScanFiles(files, Threads(2), nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("deleted.jsonl"), std::string::npos) << r.errors[0];
  EXPECT_EQ(r.files, 1u);
  EXPECT_EQ(r.ledger.requests().size(), 1u);
}

// A transcript listed as a regular file and swapped, before the scan opens it, for a symlink to a
// FIFO (whose open used to wait for a writer for ever) or to /dev/zero (read for ever): reported
// as not read, the others counted. The scan runs on a thread of its own so that a regression
// fails instead of hanging: a FIFO still waited on is opened for writing to release it.
TEST_F(ScannerTest, AFileSwappedForAFifoOrADeviceAfterItWasListedIsNotRead) {
  WriteFile(root() + "/p/s.jsonl", Line(At("m1", kT0)) + "\n");
  WriteFile(root() + "/p/swapped.jsonl", Line(At("m2", kT0)) + "\n");
  const std::string fifo = tmp_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto files = List();
  for (const std::string& target : {fifo, std::string("/dev/zero")}) {
    FaultEnv env(Env::Default());
    env.OnCall(FaultOp::kNewSequentialFile, "swapped.jsonl", [&](const std::string& path) {
      std::filesystem::remove(path);
      std::filesystem::create_symlink(target, path);
    });
    ScanOptions o = Threads(1);
    o.env = &env;
    auto scan = std::async(std::launch::async, [&] { return ScanFiles(files, o, nullptr); });
    if (scan.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      // A writer's open releases the waiting open; closed at once, the reads then find the end.
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
      scan.wait();
      FAIL() << target << ": the scan did not end";
    }
    const ScanResult r = scan.get();
    ASSERT_EQ(r.errors.size(), 1u) << target;
    EXPECT_NE(r.errors[0].find("swapped.jsonl: not a regular file"), std::string::npos)
        << r.errors[0];
    EXPECT_EQ(r.ledger.requests().size(), 1u);
    std::filesystem::remove(root() + "/p/swapped.jsonl");
    WriteFile(root() + "/p/swapped.jsonl", Line(At("m2", kT0)) + "\n");
  }
}

TEST_F(ScannerTest, EmptyFileListIsEmptyResult) {
  ScanResult r = ScanFiles({}, Threads(4), nullptr);
  EXPECT_EQ(r.files, 0u);
  EXPECT_TRUE(r.ledger.requests().empty());
  EXPECT_EQ(r.skipped.total(), 0u);
}

// --- Through an Env: long tails (hostile-trial defect 3) and shrinking files (defect 13)

TranscriptFile Discovered(Env* env, const std::string& path) {
  FileInfo info;
  EXPECT_TRUE(env->Stat(path, &info).ok()) << path;
  TranscriptFile f;
  f.path = path;
  f.size = info.size;
  f.mtime_ms = info.mtime_ms;
  f.device = info.device;
  f.inode = info.inode;
  return f;
}

ScanOptions Through(Env* env, unsigned threads) {
  ScanOptions o = Threads(threads);
  o.env = env;
  return o;
}

// A valid line and 256 MiB of NUL bytes (a crash-zeroed tail), cut into 16 pieces of 16 MiB: the
// old scanner made every later piece read the tail to the end of the file (8.5 x the file, 16.7 s
// for this size, 495 s for 1 GiB); each piece now stops at its end.
TEST(ScannerEnv, A5_CrashZeroedTailIsReadAboutTwiceNotOncePerPiece) {
  MemEnv mem;
  const std::string first = Line(At("m1", kT0)) + "\n";
  const uint64_t size = first.size() + (uint64_t(256) << 20);
  mem.AddGeneratedFile("/p/-x/s.jsonl", first, size, '\0', kT0);
  FaultEnv env(&mem);
  ScanOptions o = Through(&env, 2);
  ScanResult r = ScanFiles({Discovered(&mem, "/p/-x/s.jsonl")}, o, nullptr);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.files, 1u);
  EXPECT_EQ(r.lines, 1u);
  EXPECT_EQ(r.ledger.requests().size(), 1u);
  EXPECT_EQ(r.skipped.by_reason[int(SkipReason::kIncomplete)], 1u);
  EXPECT_EQ(r.skipped.total(), 1u);
  EXPECT_EQ(r.bytes, size);
  // The first piece reads the whole tail (its last line starts there); each later piece reads
  // its own range to learn that no line starts in it, and at most a chunk more.
  const uint64_t pieces = size / o.piece_bytes + 1;
  EXPECT_LE(env.bytes_read(), 2 * size + pieces * ((256 << 10) + 1));
  EXPECT_LE(env.calls(FaultOp::kNewSequentialFile), int(pieces));
}

TEST(ScannerEnv, A5_OverCapLinesAcrossPiecesAreDroppedOnce) {
  // s.jsonl: a request, then a 256 MiB line of 'x' that runs to the end of the file (over the cap
  // and unfinished). t.jsonl: a 3 MiB line of 'y' (over the cap) and a request. Both are cut into
  // 1 MiB pieces.
  MemEnv mem;
  const std::string first = Line(At("m1", kT0)) + "\n";
  const uint64_t run = uint64_t(256) << 20;
  mem.AddGeneratedFile("/p/-x/s.jsonl", first, first.size() + run, 'x', kT0);
  const std::string t = std::string(3 << 20, 'y') + "\n" + Line(At("m3", kT0)) + "\n";
  mem.AddFile("/p/-x/t.jsonl", t, kT0);
  FaultEnv env(&mem);
  ScanOptions o = Through(&env, 2);
  o.max_line_bytes = size_t(1) << 20;
  o.piece_bytes = 1 << 20;
  ScanResult r =
      ScanFiles({Discovered(&mem, "/p/-x/s.jsonl"), Discovered(&mem, "/p/-x/t.jsonl")}, o, nullptr);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.ledger.requests().size(), 2u);
  EXPECT_EQ(r.skipped.by_reason[int(SkipReason::kTooLong)], 1u);     // t.jsonl's long line
  EXPECT_EQ(r.skipped.by_reason[int(SkipReason::kIncomplete)], 1u);  // s.jsonl's unfinished one
  const uint64_t total = first.size() + run + t.size();
  const uint64_t pieces = total / o.piece_bytes + 2;
  EXPECT_LE(env.bytes_read(), 2 * total + pieces * ((256 << 10) + 1));
}

// A file of `n` lines, each a request with its own id.
std::string Requests(int n, const std::string& prefix) {
  std::string out;
  for (int i = 0; i < n; ++i) out += Line(At(prefix + std::to_string(i), kT0 + i)) + "\n";
  return out;
}

TEST(ScannerEnv, A4_FileTruncatedWhileBeingReadIsReported) {
  MemEnv mem;
  const std::string content = Requests(6000, "m");  // ~3.7 MiB: many reads
  ASSERT_GT(content.size(), size_t(3) << 20);
  mem.AddFile("/p/-x/s.jsonl", content, kT0);
  mem.AddFile("/p/-x/ok.jsonl", Requests(3, "k"), kT0);
  const std::vector<TranscriptFile> files = {Discovered(&mem, "/p/-x/ok.jsonl"),
                                             Discovered(&mem, "/p/-x/s.jsonl")};
  // Cut in the middle of a line, past what the first read returned.
  const size_t cut = content.find('\n', size_t(3) << 20) - 100;
  FaultEnv env(&mem);
  int reads = 0;
  env.OnCall(FaultOp::kRead, "/s.jsonl", [&](const std::string&) {
    if (++reads == 2) {
      ASSERT_TRUE(mem.Truncate("/p/-x/s.jsonl", cut).ok());
    }
  });
  ScanOptions o = Through(&env, 1);
  o.piece_bytes = uint64_t(1) << 30;  // one piece
  ScanResult r = ScanFiles(files, o, nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "/p/-x/s.jsonl: shrank from " + std::to_string(content.size()) + " to " +
                             std::to_string(cut) + " bytes while being read");
  EXPECT_EQ(r.files_shrunk, 1u);
  EXPECT_TRUE(r.incomplete());
  // The cut line is not an unfinished last line: it is not counted as incomplete.
  EXPECT_EQ(r.skipped.total(), 0u);
  const uint64_t complete_lines = std::count(content.begin(), content.begin() + cut, '\n');
  EXPECT_EQ(r.lines, complete_lines + 3);
  EXPECT_EQ(r.ledger.requests().size(), complete_lines + 3);
}

TEST(ScannerEnv, A4_TruncatedBeforeItsLaterPiecesAreRead) {
  // Cut below what the first read already returned (the reader cannot see where): the size the
  // file has now is reported. Pieces and threads: still one warning.
  MemEnv mem;
  const std::string content = Requests(2000, "m");
  mem.AddFile("/p/-x/s.jsonl", content, kT0);
  const TranscriptFile f = Discovered(&mem, "/p/-x/s.jsonl");
  for (unsigned threads : {1u, 3u}) {
    const size_t cut = 100000 + threads;
    ASSERT_TRUE(mem.Truncate("/p/-x/s.jsonl", cut).ok());
    ScanOptions o = Through(&mem, threads);
    o.piece_bytes = 64 << 10;
    ScanResult r = ScanFiles({f}, o, nullptr);
    ASSERT_EQ(r.errors.size(), 1u) << threads;
    EXPECT_EQ(r.errors[0], "/p/-x/s.jsonl: shrank from " + std::to_string(content.size()) + " to " +
                               std::to_string(cut) + " bytes while being read");
    EXPECT_EQ(r.skipped.total(), 0u);
    EXPECT_EQ(r.lines, uint64_t(std::count(content.begin(), content.begin() + cut, '\n')));
    mem.AddFile("/p/-x/s.jsonl", content, kT0);  // restore for the next round
  }
}

TEST(ScannerEnv, A4_AGrowingFileIsNotAShrunkOne) {
  MemEnv mem;
  const std::string content = Requests(10, "m");
  mem.AddFile("/p/-x/s.jsonl", content + "{\"partial", kT0);
  const TranscriptFile f = Discovered(&mem, "/p/-x/s.jsonl");
  mem.AddFile("/p/-x/s.jsonl", content + "{\"partial\":1}\n" + Requests(2, "n"), kT0);
  ScanResult r = ScanFiles({f}, Through(&mem, 1), nullptr);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_FALSE(r.incomplete());
  EXPECT_EQ(r.ledger.requests().size(), 12u);
}

TEST_F(ScannerTest, A4_RealFileTruncatedAfterDiscovery) {
  const std::string path = root() + "/p/s.jsonl";
  const std::string content = Requests(50, "m");
  WriteFile(path, content);
  auto files = List();
  ASSERT_EQ(::truncate(path.c_str(), 1000), 0);
  ScanResult r = ScanFiles(files, Threads(1), nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], path + ": shrank from " + std::to_string(content.size()) +
                             " to 1000 bytes while being read");
  EXPECT_EQ(r.skipped.by_reason[int(SkipReason::kIncomplete)], 0u);
}

TEST(ScannerEnv, OutOfFileDescriptorsOnOneFileIsReportedAndOthersStillCount) {
  MemEnv mem;
  mem.AddFile("/p/-x/a.jsonl", Requests(3, "a"), kT0);
  mem.AddFile("/p/-x/b.jsonl", Requests(4, "b"), kT0);
  mem.AddFile("/p/-x/c.jsonl", Requests(5, "c"), kT0);
  FaultEnv env(&mem);
  env.Inject(testing_util::Fault(FaultOp::kNewSequentialFile, EMFILE).OnPath("/b.jsonl"));
  DiscoveryResult found = FindTranscripts({"/p"}, &env);
  ASSERT_TRUE(found.complete());
  ScanResult r = ScanFiles(found.files, Through(&env, 2), nullptr);
  EXPECT_EQ(r.errors, (std::vector<std::string>{"/p/-x/b.jsonl: open: Too many open files"}));
  EXPECT_TRUE(r.incomplete());
  EXPECT_EQ(r.files, 2u);
  EXPECT_EQ(r.ledger.requests().size(), 8u);
}

TEST(ScannerEnv, ReadErrorIsReportedAndTheFileIsIncomplete) {
  MemEnv mem;
  mem.AddFile("/p/-x/s.jsonl", Requests(2000, "m"), kT0);
  FaultEnv env(&mem);
  env.Inject(testing_util::Fault(FaultOp::kRead, EIO).Nth(3));
  ScanResult r = ScanFiles({Discovered(&mem, "/p/-x/s.jsonl")}, Through(&env, 1), nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "/p/-x/s.jsonl: read: Input/output error");
  EXPECT_TRUE(r.incomplete());
  EXPECT_GT(r.ledger.requests().size(), 0u);
}

}  // namespace
}  // namespace ccmon

// --- The agent's bulk first start: where each file was read to, and the sessions' spans

namespace ccmon {
namespace {

ScanOptions ForAgent(Env* env, unsigned threads) {
  ScanOptions o = Through(env, threads);
  o.file_cursors_head_bytes = 1024;
  o.spans = true;
  return o;
}

// A file's cursor is just past its last complete line (an unfinished one is seen, not
// consumed), its identity that of the descriptor read, its head hash over the first 1 KiB (or
// the whole of a shorter file).
TEST(ScannerCursors, OffsetIsPastTheLastCompleteLineAndIdentityIsTheFileRead) {
  MemEnv mem;
  const std::string whole = Requests(40, "a");  // > 1 KiB
  const std::string partial = Requests(1, "b") + "{\"type\":\"assis";
  mem.AddFile("/p/-x/whole.jsonl", whole, kT0);
  mem.AddFile("/p/-x/partial.jsonl", partial, kT0);
  mem.AddFile("/p/-x/empty.jsonl", "", kT0);
  const std::vector<TranscriptFile> files = {Discovered(&mem, "/p/-x/whole.jsonl"),
                                             Discovered(&mem, "/p/-x/partial.jsonl"),
                                             Discovered(&mem, "/p/-x/empty.jsonl")};
  for (unsigned threads : {1u, 2u}) {
    ScanResult r = ScanFiles(files, ForAgent(&mem, threads), nullptr);
    ASSERT_TRUE(r.errors.empty());
    ASSERT_TRUE(r.unstable.empty());
    ASSERT_EQ(r.cursors.size(), 3u);  // sorted by path
    const ScannedFile& e = r.cursors[0];
    const ScannedFile& p = r.cursors[1];
    const ScannedFile& w = r.cursors[2];
    EXPECT_EQ(e.path, "/p/-x/empty.jsonl");
    EXPECT_EQ(e.offset, 0u);
    EXPECT_EQ(e.size_seen, 0u);
    EXPECT_EQ(e.head_bytes, 0u);
    EXPECT_EQ(e.head_hash, Fnv1a64(""));
    EXPECT_EQ(p.path, "/p/-x/partial.jsonl");
    EXPECT_EQ(p.offset, partial.find('\n') + 1);
    EXPECT_EQ(p.size_seen, partial.size());
    EXPECT_EQ(p.head_bytes, partial.size());
    EXPECT_EQ(p.head_hash, Fnv1a64(partial));
    EXPECT_EQ(w.path, "/p/-x/whole.jsonl");
    EXPECT_EQ(w.offset, whole.size());
    EXPECT_EQ(w.size_seen, whole.size());
    EXPECT_EQ(w.head_bytes, 1024u);
    EXPECT_EQ(w.head_hash, Fnv1a64(std::string_view(whole).substr(0, 1024)));
    FileInfo info;
    ASSERT_TRUE(mem.Stat("/p/-x/whole.jsonl", &info).ok());
    EXPECT_EQ(w.device, info.device);
    EXPECT_EQ(w.inode, info.inode);
    // Read to the size they were listed with: their listed mtime, for a later look.
    for (const ScannedFile& c : r.cursors) EXPECT_EQ(c.listed_mtime_ms, kT0) << c.path;
  }
  // Off by default: replay pays nothing.
  EXPECT_TRUE(ScanFiles(files, Through(&mem, 1), nullptr).cursors.empty());
}

// Pieces: the cursor is the same as a whole read's, wherever the pieces cut, with an unfinished
// line or a long line at the end.
TEST(ScannerCursors, PiecesGiveTheWholeFilesCursor) {
  MemEnv mem;
  const std::string base = Requests(30, "c");
  for (const std::string& tail :
       {std::string(), std::string("{\"unfinished"), std::string(3000, 'z') + "\n"}) {
    const std::string content = base + tail;
    mem.AddFile("/p/-x/s.jsonl", content, kT0);
    const TranscriptFile f = Discovered(&mem, "/p/-x/s.jsonl");
    ScanOptions whole_options = ForAgent(&mem, 1);
    whole_options.max_line_bytes = 2048;
    ScanResult whole = ScanFiles({f}, whole_options, nullptr);
    ASSERT_EQ(whole.cursors.size(), 1u);
    EXPECT_EQ(whole.cursors[0].size_seen, content.size());
    EXPECT_EQ(whole.cursors[0].offset, tail.starts_with("{") ? base.size() : content.size());
    for (uint64_t piece : {1u, 7u, 500u, 4096u}) {
      for (unsigned threads : {1u, 3u}) {
        ScanOptions o = ForAgent(&mem, threads);
        o.max_line_bytes = 2048;
        o.piece_bytes = piece;
        ScanResult r = ScanFiles({f}, o, nullptr);
        ASSERT_EQ(r.cursors.size(), 1u) << piece;
        EXPECT_EQ(r.cursors[0].offset, whole.cursors[0].offset) << piece << " " << threads;
        EXPECT_EQ(r.cursors[0].size_seen, whole.cursors[0].size_seen) << piece;
        EXPECT_EQ(r.cursors[0].head_hash, whole.cursors[0].head_hash) << piece;
        EXPECT_EQ(DumpLedger(r.ledger), DumpLedger(whole.ledger)) << piece;
      }
    }
  }
}

// Lines appended while the file is read are either read (and the cursor is past them) or not
// (and the cursor is before them): never counted without the cursor moving past them.
TEST(ScannerCursors, AFileGrowingDuringTheScanHasACursorAtWhatWasRead) {
  MemEnv mem;
  const std::string content = Requests(6000, "m");  // several reads
  mem.AddFile("/p/-x/s.jsonl", content, kT0);
  const TranscriptFile f = Discovered(&mem, "/p/-x/s.jsonl");
  const std::string more = Requests(3, "n") + "{\"half";
  FaultEnv env(&mem);
  int reads = 0;
  env.OnCall(FaultOp::kRead, "/s.jsonl", [&](const std::string&) {
    if (++reads == 3) {
      ASSERT_TRUE(mem.AppendInPlace("/p/-x/s.jsonl", more).ok());  // same inode
    }
  });
  ScanOptions o = ForAgent(&env, 1);
  o.piece_bytes = uint64_t(1) << 30;
  ScanResult r = ScanFiles({f}, o, nullptr);
  ASSERT_TRUE(r.errors.empty());
  ASSERT_EQ(r.cursors.size(), 1u);
  EXPECT_EQ(r.ledger.requests().size(), 6003u);
  EXPECT_EQ(r.cursors[0].offset, content.size() + more.rfind('\n') + 1);
  EXPECT_EQ(r.cursors[0].size_seen, content.size() + more.size());
  // It grew while read: what was read is not what was listed, so no mtime vouches for it.
  EXPECT_EQ(r.cursors[0].listed_mtime_ms, -1);
}

// A file replaced between the opens of its pieces: the pieces read different files, so there is
// no one place to continue from. It is named, and has no cursor.
TEST(ScannerCursors, AFileReplacedBetweenItsPiecesHasNoCursor) {
  MemEnv mem;
  const std::string content = Requests(200, "m");
  mem.AddFile("/p/-x/s.jsonl", content, kT0);
  mem.AddFile("/p/-x/ok.jsonl", Requests(2, "k"), kT0);
  const std::vector<TranscriptFile> files = {Discovered(&mem, "/p/-x/s.jsonl"),
                                             Discovered(&mem, "/p/-x/ok.jsonl")};
  FaultEnv env(&mem);
  int opens = 0;
  env.OnCall(FaultOp::kNewSequentialFile, "/s.jsonl", [&](const std::string&) {
    if (++opens == 2) mem.AddFile("/p/-x/s.jsonl", Requests(200, "r"), kT0);  // a new inode
  });
  ScanOptions o = ForAgent(&env, 1);
  o.piece_bytes = 16 << 10;
  ScanResult r = ScanFiles(files, o, nullptr);
  ASSERT_EQ(r.unstable.size(), 1u);
  EXPECT_EQ(r.unstable[0],
            "/p/-x/s.jsonl: replaced while being read (its pieces read different files)");
  ASSERT_EQ(r.cursors.size(), 1u);
  EXPECT_EQ(r.cursors[0].path, "/p/-x/ok.jsonl");
}

// A shrunk file (an error already) has no cursor either.
TEST(ScannerCursors, AShrunkFileHasNoCursor) {
  MemEnv mem;
  const std::string content = Requests(50, "m");
  mem.AddFile("/p/-x/s.jsonl", content, kT0);
  const TranscriptFile f = Discovered(&mem, "/p/-x/s.jsonl");
  ASSERT_TRUE(mem.Truncate("/p/-x/s.jsonl", 1000).ok());
  ScanResult r = ScanFiles({f}, ForAgent(&mem, 1), nullptr);
  EXPECT_EQ(r.errors.size(), 1u);
  EXPECT_TRUE(r.cursors.empty());
}

// Spans (A41's inputs): every request line and prompt line of a session, copies included; a
// request's newest copy. The same whatever the threads and pieces (merged like the rest).
TEST(ScannerCursors, SpansCoverEveryLineOfASessionAndEveryCopyOfARequest) {
  MemEnv mem;
  Msg first = At("m1", kT0, "s1");
  Msg copy = first;
  copy.timestamp = Iso(kT0 + 5000);  // a streamed copy, later, fewer tokens: not preferred
  Msg resumed = first;
  resumed.session = "s2";  // the copy in a resumed session, a day later
  resumed.timestamp = Iso(kT0 + kDay);
  Msg synthetic = At("m_err", kT0 + 2 * kDay, "s1");
  synthetic.model = "<synthetic>";
  synthetic.api_error = true;
  const std::string prompt =
      R"J({"parentUuid":null,"isSidechain":false,"cwd":"/Users/x/app","sessionId":"s3","type":"user","message":{"role":"user","content":"hi"},"uuid":"0b5e8c2a-0000-4000-8000-000000000001","timestamp":")J" +
      Iso(kT0 - 1000) + "\"}\n";
  mem.AddFile("/p/-x/a.jsonl", Line(first) + "\n" + Line(copy) + "\n" + Line(synthetic) + "\n",
              kT0);
  mem.AddFile("/p/-x/b.jsonl", Line(resumed) + "\n" + prompt, kT0);
  const std::vector<TranscriptFile> files = {Discovered(&mem, "/p/-x/a.jsonl"),
                                             Discovered(&mem, "/p/-x/b.jsonl")};
  ScanResult r = ScanFiles(files, ForAgent(&mem, 1), nullptr);
  ASSERT_EQ(r.ledger.requests().size(), 1u);
  EXPECT_EQ(r.ledger.request_newest_ms(0), kT0 + kDay);
  EXPECT_EQ(r.ledger.requests()[0].timestamp_ms, kT0);
  const StringPool& s = r.ledger.strings();
  std::map<std::string, SessionSpan> spans;
  for (const auto& [id, span] : r.ledger.session_spans()) spans[s.Get(id)] = span;
  ASSERT_EQ(spans.size(), 3u);  // the synthetic line names s1 but is no request line
  EXPECT_EQ(spans["s1"], (SessionSpan{kT0, kT0 + 5000, kT0 + 5000, true}));
  EXPECT_EQ(spans["s2"], (SessionSpan{kT0 + kDay, kT0 + kDay, kT0 + kDay, true}));
  EXPECT_EQ(spans["s3"], (SessionSpan{kT0 - 1000, kT0 - 1000, INT64_MIN, false}));
  for (uint64_t piece : {1u, 100u}) {
    for (unsigned threads : {1u, 2u, 3u}) {
      ScanOptions o = ForAgent(&mem, threads);
      o.piece_bytes = piece;
      EXPECT_EQ(DumpLedger(ScanFiles(files, o, nullptr).ledger), DumpLedger(r.ledger));
    }
  }
}

}  // namespace
}  // namespace ccmon
