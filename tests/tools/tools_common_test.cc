// Tests of what the tools share (src/tools/common): strict numeric flags, flag scopes, and
// output that does not lose write errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "testing/fault_env.h"
#include "testing/refusing_stream.h"
#include "testing/temp_dir.h"
#include "tools/common/flags.h"
#include "tools/common/output.h"
#include "tools/common/stop_signals.h"

namespace ccmon {
namespace {

using testing_util::Fault;
using testing_util::FaultEnv;
using testing_util::FaultOp;
using testing_util::Listing;
using testing_util::RefusingBuf;
using testing_util::TempDir;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ParseUnsignedFlag, AcceptsDecimalsInRange) {
  uint64_t v = 7;
  EXPECT_TRUE(ParseUnsignedFlag("threads", "0", 0, 1024, &v).ok());
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(ParseUnsignedFlag("threads", "1024", 0, 1024, &v).ok());
  EXPECT_EQ(v, 1024u);
  EXPECT_TRUE(ParseUnsignedFlag("n", "18446744073709551615", 0, UINT64_MAX, &v).ok());
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_TRUE(ParseUnsignedFlag("n", "007", 0, 10, &v).ok());
  EXPECT_EQ(v, 7u);
}

TEST(ParseUnsignedFlag, RejectsSignsJunkOverflowAndOutOfRange) {
  for (const char* bad :
       {"-1", "+1", "", " 1", "1 ", "1k", "0x10", "1e3", "1.0", "1025", "18446744073709551615",
        "18446744073709551616", "99999999999999999999999"}) {
    uint64_t v = 42;
    Status s = ParseUnsignedFlag("threads", bad, 0, 1024, &v);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(v, 42u) << "untouched on failure: " << bad;
    EXPECT_EQ(s.message(),
              std::string("--threads wants an integer from 0 to 1024, got '") + bad + "'");
  }
  uint64_t v = 0;
  EXPECT_FALSE(ParseUnsignedFlag("n", "18446744073709551616", 0, UINT64_MAX, &v).ok());
  Status s = ParseUnsignedFlag("max-line-bytes", "512", 1024, 1 << 30, &v, "bytes");
  EXPECT_EQ(s.message(),
            "--max-line-bytes wants an integer from 1024 to 1073741824 bytes, got '512'");
}

TEST(CheckFlagsApply, NamesTheFlagTheCommandAndWhereItBelongs) {
  std::vector<FlagScope> scopes = {{"output", {"openmetrics"}},
                                   {"step", {"openmetrics", "remote-write"}}};
  EXPECT_TRUE(CheckFlagsApply("metrics", {"device", "threads"}, scopes).ok());
  EXPECT_TRUE(CheckFlagsApply("openmetrics", {"output", "step"}, scopes).ok());
  EXPECT_TRUE(CheckFlagsApply("remote-write", {"step"}, scopes).ok());
  EXPECT_EQ(CheckFlagsApply("metrics", {"device", "output"}, scopes).message(),
            "--output does not apply to metrics (only to openmetrics)");
  EXPECT_EQ(CheckFlagsApply("summary", {"step"}, scopes).message(),
            "--step does not apply to summary (only to openmetrics, remote-write)");
}

TEST(AppendStreamBuf, PassesEverythingOnInOrder) {
  std::string got;
  AppendStreamBuf buf(
      [&](std::string_view d) {
        got.append(d);
        return Status::Ok();
      },
      8);
  std::ostream os(&buf);
  std::string big(100, 'x');
  os << "abc" << 'd' << big << "efghijk" << 12345;
  os.flush();
  EXPECT_TRUE(os.good());
  EXPECT_EQ(got, "abcd" + big + "efghijk12345");
}

TEST(AppendStreamBuf, TheFirstFailureSticksAndFailsTheStream) {
  int calls = 0;
  AppendStreamBuf buf(
      [&](std::string_view) {
        ++calls;
        return calls == 1 ? Status::Ok() : Status::IoError("f: write: No space left on device");
      },
      4);
  std::ostream os(&buf);
  os << "1234";  // fills the buffer
  os << "5678";  // drains the first piece (ok), buffers this one
  os.flush();    // fails
  EXPECT_TRUE(os.bad());
  EXPECT_EQ(buf.status().message(), "f: write: No space left on device");
  os.clear();
  os << "9";
  os.flush();
  EXPECT_TRUE(os.bad()) << "writes after a failure fail too";
  EXPECT_EQ(calls, 2);
}

TEST(FlushOutput, AFailedStreamIsAnError) {
  std::ostringstream good;
  good << "fine";
  EXPECT_TRUE(FlushOutput(good, "standard output").ok());
  RefusingBuf refusing;
  std::ostream bad(&refusing);
  bad << "lost";
  Status s = FlushOutput(bad, "standard output");
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_EQ(s.message().rfind("write failed for standard output", 0), 0u) << s.message();
}

TEST(WriteOutputFile, ReplacesARegularFileAtomically) {
  TempDir dir;
  const std::string path = dir / "out.om";
  WriteFile(path, "old");
  FaultEnv env(Env::Default());
  Status s = WriteOutputFile(&env, path, 0644, [](std::ostream& o) { o << "new content\n"; });
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(ReadAll(path), "new content\n");
  EXPECT_EQ(env.calls(FaultOp::kRename), 1);
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"out.om"});
}

TEST(WriteOutputFile, AFullDiskLeavesTheOldFileAndNoTemporary) {
  TempDir dir;
  const std::string path = dir / "out.om";
  WriteFile(path, "old");
  FaultEnv env(Env::Default());
  // The disk fills up in the middle of the stream (the third 64 KiB piece of about 1 MB).
  env.Inject(Fault(FaultOp::kAppend, ENOSPC).Nth(3));
  Status s = WriteOutputFile(&env, path, 0644, [](std::ostream& o) {
    for (int i = 0; i < 100000; ++i) o << "line " << i << "\n";
  });
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("No space left on device"), std::string::npos) << s.message();
  EXPECT_EQ(env.failures(FaultOp::kAppend), 1);
  EXPECT_EQ(ReadAll(path), "old");
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"out.om"});
}

TEST(WriteOutputFile, AFailedRenameLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir / "out.om";
  FaultEnv env(Env::Default());
  env.Inject(Fault(FaultOp::kRename, EXDEV));
  Status s = WriteOutputFile(&env, path, 0644, [](std::ostream& o) { o << "content\n"; });
  EXPECT_EQ(s.message(), "rename " + path + ".tmp to " + path + ": Invalid cross-device link");
  EXPECT_TRUE(Listing(dir.path()).empty());
}

TEST(WriteOutputFile, APathUnderAFileFailsAndCreatesNothing) {
  TempDir dir;
  WriteFile(dir / "plain", "x");
  bool produced = false;
  Status s = WriteOutputFile(Env::Default(), dir / "plain/out.om", 0644,
                             [&](std::ostream&) { produced = true; });
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(produced) << "nothing is formatted for a file that cannot be created";
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"plain"});
}

TEST(WriteOutputFile, StreamsAreWrittenDirectly) {
  // /dev/null is no file to replace: no /dev/null.tmp, no rename.
  FaultEnv env(Env::Default());
  Status s = WriteOutputFile(&env, "/dev/null", 0644, [](std::ostream& o) { o << "gone\n"; });
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(env.calls(FaultOp::kRename), 0);
  // /dev/full fails every write: the error is seen.
  s = WriteOutputFile(&env, "/dev/full", 0644, [](std::ostream& o) { o << "lost\n"; });
  EXPECT_NE(s.message().find("/dev/full: write: No space left on device"), std::string::npos)
      << s.message();
  // A FIFO is a stream too (read here by a child that discards it).
  TempDir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] {
    std::ifstream in(fifo);
    received.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
  s = WriteOutputFile(&env, fifo, 0644, [](std::ostream& o) { o << "through the fifo\n"; });
  reader.join();
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(received, "through the fifo\n");
  EXPECT_EQ(env.calls(FaultOp::kRename), 0);
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"fifo"});
}

TEST(WriteOutputFile, AStopDuringTheWriteLeavesTheOldFileAndNoTemporary) {
  // A signal (StopSignals) in the middle of a long history: the next write fails, the temporary
  // file goes, the old file stays.
  TempDir dir;
  const std::string path = dir / "out.om";
  WriteFile(path, "old");
  std::stop_source stop;
  bool saw_temp = false;
  Status s = WriteOutputFile(
      Env::Default(), path, 0644,
      [&](std::ostream& o) {
        for (int i = 0; i < 100000; ++i) {
          if (i == 50000) {
            saw_temp = std::filesystem::exists(path + ".tmp");
            stop.request_stop();
          }
          o << "line " << i << "\n";
        }
      },
      stop.get_token());
  EXPECT_TRUE(saw_temp) << "the stop came while the temporary file was being written";
  EXPECT_EQ(s.message(), "interrupted before the end");
  EXPECT_EQ(ReadAll(path), "old");
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"out.om"});

  // A stop after the last write (before the rename) still keeps the old file.
  std::stop_source late;
  s = WriteOutputFile(
      Env::Default(), path, 0644,
      [&](std::ostream& o) {
        o << "short\n";
        late.request_stop();
      },
      late.get_token());
  EXPECT_EQ(s.message(), "interrupted before the end");
  EXPECT_EQ(ReadAll(path), "old");
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"out.om"});
}

TEST(StopSignals, OnlyTheFirstSignalInsideAScopeStops) {
  StopSignals signals;
  EXPECT_FALSE(signals.Deliver(SIGINT)) << "outside every scope a signal ends the process";
  EXPECT_EQ(signals.caught(), 0);
  {
    StopSignals::Scope outer(&signals);
    {
      StopSignals::Scope inner(&signals);
      EXPECT_FALSE(inner.token().stop_requested());
    }
    EXPECT_TRUE(signals.Deliver(SIGTERM));
    EXPECT_TRUE(outer.token().stop_requested());
    EXPECT_EQ(signals.caught(), SIGTERM);
    EXPECT_FALSE(signals.Deliver(SIGINT)) << "a second signal ends the process at once";
    EXPECT_EQ(signals.caught(), SIGTERM);
  }
  EXPECT_FALSE(signals.Deliver(SIGTERM));
  signals.ReraiseIfCaught();  // not installed (a test): returns

  StopSignals::Scope none(nullptr);
  EXPECT_FALSE(none.token().stop_possible());
}

}  // namespace
}  // namespace ccmon
