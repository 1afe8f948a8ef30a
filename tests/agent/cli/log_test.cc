#include "agent/cli/log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "testing/fake_clock.h"
#include "testing/temp_dir.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(LogTest, LineFormat) {
  EXPECT_EQ(FormatLogLine(1767225600123, LogLevel::kInfo, "agent started",
                          {{"pid", int64_t(42)}, {"device", "mac-1"}, {"empty", ""}}),
            "ts=2026-01-01T00:00:00.123Z level=info msg=\"agent started\" pid=42 device=mac-1 "
            "empty=\"\"\n");
  EXPECT_EQ(FormatLogLine(0, LogLevel::kError, "x", {}),
            "ts=1970-01-01T00:00:00.000Z level=error msg=x\n");
  // Before 1970 (a clock gone wrong) still formats.
  EXPECT_EQ(FormatLogLine(-1, LogLevel::kWarn, "x", {}).substr(0, 27),
            "ts=1969-12-31T23:59:59.999Z");
}

TEST(LogTest, ValuesAreQuotedAndEscaped) {
  EXPECT_EQ(LogfmtValue("plain"), "plain");
  EXPECT_EQ(LogfmtValue("a b"), "\"a b\"");
  EXPECT_EQ(LogfmtValue("k=v"), "\"k=v\"");
  EXPECT_EQ(LogfmtValue("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(LogfmtValue("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(LogfmtValue("\x1b[2J\x7f"), "\"\\x1b[2J\\x7f\"");
  EXPECT_EQ(LogfmtValue("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // valid UTF-8 kept
  EXPECT_EQ(LogfmtValue("\xff\xc3"), "\"\\xff\\xc3\"");      // invalid bytes escaped
  EXPECT_EQ(LogfmtValue("\xc2\x9b"), "\"\\xc2\\x9b\"");      // C1 CSI escaped
  EXPECT_EQ(LogfmtValue(std::string("a\0b", 3)), "\"a\\x00b\"");
}

TEST(LogTest, HostileMessageStaysOneLine) {
  const std::string line = FormatLogLine(0, LogLevel::kInfo, "file\nts=1970 level=error msg=forged",
                                         {{"path", "/x\n/y"}, {"Bad Key", "v"}});
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_NE(line.find(" _=v"), std::string::npos) << line;
  LogLevel level;
  ASSERT_TRUE(ParseLogLevel(line, &level));
  EXPECT_EQ(level, LogLevel::kInfo);
  EXPECT_FALSE(ParseLogLevel("level=error no ts", &level));
  EXPECT_FALSE(ParseLogLevel("ts=x level=bogus msg=y", &level));
}

TEST(LogTest, FileLoggerAppendsAcrossReopensAndMirrors) {
  testing_util::TempDir dir;
  testing_util::FakeClock clock;
  std::ostringstream mirror;
  FileLoggerOptions o;
  o.path = dir / "agent.log";
  o.clock = &clock;
  o.also_to = &mirror;
  {
    std::unique_ptr<FileLogger> log;
    ASSERT_TRUE(FileLogger::Open(o, &log).ok());
    log->Info("one");
    log->Debug("dropped by level");
  }
  o.also_to = nullptr;
  std::unique_ptr<FileLogger> log;
  ASSERT_TRUE(FileLogger::Open(o, &log).ok());
  log->Error("two", {{"n", 2}});
  EXPECT_EQ(Slurp(o.path),
            "ts=2026-01-01T00:00:00.000Z level=info msg=one\n"
            "ts=2026-01-01T00:00:00.000Z level=error msg=two n=2\n");
  EXPECT_EQ(mirror.str(), "ts=2026-01-01T00:00:00.000Z level=info msg=one\n");
  struct stat st;
  ASSERT_EQ(::stat(o.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(LogTest, RotatesBySizeKeepingN) {
  testing_util::TempDir dir;
  FileLoggerOptions o;
  o.path = dir / "agent.log";
  o.max_bytes = 4096;
  o.keep = 2;
  std::unique_ptr<FileLogger> log;
  ASSERT_TRUE(FileLogger::Open(o, &log).ok());
  const std::string filler(900, 'x');
  for (int i = 0; i < 30; ++i) log->Info(filler, {{"i", i}});
  EXPECT_EQ(testing_util::Listing(dir.path()),
            (std::vector<std::string>{"agent.log", "agent.log.1", "agent.log.2"}));
  for (const char* name : {"agent.log", "agent.log.1", "agent.log.2"}) {
    const std::string text = Slurp(dir / name);
    EXPECT_LE(text.size(), 4096u) << name;
    EXPECT_EQ(text.back(), '\n') << name;  // whole lines only
  }
  EXPECT_NE(Slurp(dir / "agent.log").find("i=29"), std::string::npos);
  EXPECT_EQ(log->dropped_lines(), 0u);
}

TEST(LogTest, ReopensWhenTheFileIsRemovedOrRenamed) {
  testing_util::TempDir dir;
  FileLoggerOptions o;
  o.path = dir / "agent.log";
  std::unique_ptr<FileLogger> log;
  ASSERT_TRUE(FileLogger::Open(o, &log).ok());
  log->Info("before");
  ASSERT_EQ(::rename(o.path.c_str(), (dir / "moved.log").c_str()), 0);
  log->Info("after");
  EXPECT_NE(Slurp(o.path).find("after"), std::string::npos);
  EXPECT_EQ(Slurp(dir / "moved.log").find("after"), std::string::npos);
}

TEST(LogTest, FailuresDropLinesAndSayWhy) {
  FileLoggerOptions o;
  o.path = "/dev/full";  // not a regular file: refused at open
  std::unique_ptr<FileLogger> log;
  EXPECT_FALSE(FileLogger::Open(o, &log).ok());
  testing_util::TempDir dir;
  o.path = dir / "no/such/dir/agent.log";
  EXPECT_FALSE(FileLogger::Open(o, &log).ok());
  o.path = dir.path();  // a directory
  EXPECT_FALSE(FileLogger::Open(o, &log).ok());
  // The directory vanishes under a running logger: lines are dropped and counted.
  testing_util::MakeDirs(dir / "state");
  o.path = dir / "state/agent.log";
  ASSERT_TRUE(FileLogger::Open(o, &log).ok());
  std::filesystem::remove_all(dir / "state");
  log->Info("lost");
  log->Info("lost too");
  EXPECT_EQ(log->dropped_lines(), 2u);
  EXPECT_NE(log->last_error().message().find("agent.log"), std::string::npos);
  // ... and logging resumes once it is back.
  testing_util::MakeDirs(dir / "state");
  log->Info("back");
  EXPECT_EQ(log->dropped_lines(), 2u);
  EXPECT_NE(Slurp(o.path).find("back"), std::string::npos);
}

TEST(LogTest, ConcurrentWritersNeverInterleaveWithinALine) {
  testing_util::TempDir dir;
  FileLoggerOptions o;
  o.path = dir / "agent.log";
  o.max_bytes = 1 << 20;
  std::unique_ptr<FileLogger> log;
  ASSERT_TRUE(FileLogger::Open(o, &log).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) log->Info("concurrent", {{"thread", t}, {"i", i}});
    });
  for (auto& th : threads) th.join();
  std::ifstream in(o.path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    ASSERT_EQ(line.rfind("ts=", 0), 0u) << line;
    ASSERT_NE(line.find(" i="), std::string::npos) << line;
  }
  EXPECT_EQ(n, 2000);
}

TEST(LogTest, MemoryLogger) {
  testing_util::FakeClock clock;
  MemoryLogger log(&clock);
  log.Warn("w", {{"k", "v"}});
  ASSERT_EQ(log.lines().size(), 1u);
  EXPECT_EQ(log.lines()[0], "ts=2026-01-01T00:00:00.000Z level=warn msg=w k=v\n");
}

}  // namespace
}  // namespace ccmon
