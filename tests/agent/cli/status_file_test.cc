#include "agent/cli/status_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testing/fault_env.h"
#include "testing/mem_env.h"
#include "testing/temp_dir.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

AgentStatus Sample() {
  AgentStatus s;
  s.pid = 4242;
  s.version = "0.1.0";
  s.started_unix = 1795690000;
  s.updated_unix = 1795690100;
  s.files_tracked = 2000;
  s.bytes_behind = int64_t(1) << 40;
  s.lines_read = 123456789;
  s.caught_up = 1;
  s.outbox_requests = 7;
  s.outbox_bytes = 65536;
  s.last_push_unix = 1795690099;
  s.last_push_status = "network error: 127.0.0.1: connect: Connection refused";
  s.consecutive_push_failures = 3;
  s.last_error = "quote \" backslash \\ newline \n ctrl \x01 utf8 \xc3\xa9";
  return s;
}

TEST(StatusFileTest, JsonRoundTripKeepsEveryField) {
  const AgentStatus s = Sample();
  AgentStatus back;
  ASSERT_TRUE(StatusFromJson(StatusToJson(s), &back).ok());
  EXPECT_EQ(back, s);
  const std::string json = StatusToJson(s);
  EXPECT_EQ(json.back(), '\n');
  EXPECT_EQ(json.find('\n'), json.size() - 1);  // one line
  for (const char* field :
       {"\"files_tracked\":2000", "\"bytes_behind\":1099511627776", "\"outbox_requests\":7",
        "\"last_push_unix\":1795690099", "\"last_push_status\":\"network error"})
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
}

TEST(StatusFileTest, InvalidUtf8IsReplacedNotThrown) {
  AgentStatus s;
  s.last_error = "bad \xff\xfe bytes";
  AgentStatus back;
  ASSERT_TRUE(StatusFromJson(StatusToJson(s), &back).ok());
  EXPECT_NE(back.last_error, s.last_error);
  EXPECT_EQ(back.last_error.substr(0, 4), "bad ");
}

TEST(StatusFileTest, ReadersToleratesUnknownAndMissingFieldsButNotWrongTypes) {
  AgentStatus back;
  ASSERT_TRUE(StatusFromJson(R"({"files_tracked":5,"future_field":[1,2]})", &back).ok());
  EXPECT_EQ(back.files_tracked, 5);
  EXPECT_EQ(back.outbox_requests, 0);
  EXPECT_EQ(StatusFromJson(R"({"files_tracked":"5"})", &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(StatusFromJson(R"({"last_error":5})", &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(StatusFromJson(R"({"pid":1.5})", &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(StatusFromJson("[1]", &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(StatusFromJson("{\"pid\":", &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(StatusFromJson("", &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(StatusFromJson(R"({"pid":18446744073709551615})", &back).code(),
            Status::Code::kCorruption);
}

TEST(StatusFileTest, WriteIsAtomicAndPrivate) {
  testing_util::TempDir dir;
  const std::string path = dir / "status.json";
  ASSERT_TRUE(WriteStatusFile(Env::Default(), path, Sample()).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  AgentStatus back;
  ASSERT_TRUE(ReadStatusFile(Env::Default(), path, &back).ok());
  EXPECT_EQ(back, Sample());
  EXPECT_EQ(testing_util::Listing(dir.path()), std::vector<std::string>{"status.json"});
}

// The status file is rewritten every few seconds: no fsync (two per write slowed the first
// start), still replaced atomically.
TEST(StatusFileTest, WritesAreNotSynced) {
  testing_util::MemEnv mem;
  testing_util::FaultEnv env(&mem);
  ASSERT_TRUE(WriteStatusFile(&env, "/s/status.json", Sample()).ok());
  ASSERT_TRUE(WriteStatusFile(&env, "/s/status.json", Sample()).ok());
  EXPECT_EQ(env.calls(testing_util::FaultOp::kSync), 0);
  EXPECT_EQ(env.calls(testing_util::FaultOp::kSyncDir), 0);
  EXPECT_EQ(env.calls(testing_util::FaultOp::kRename), 2);
  AgentStatus back;
  ASSERT_TRUE(ReadStatusFile(&env, "/s/status.json", &back).ok());
  EXPECT_EQ(back, Sample());
}

TEST(StatusFileTest, FullDiskLeavesTheOldFileAndNoTemporary) {
  testing_util::MemEnv mem;
  testing_util::FaultEnv env(&mem);
  ASSERT_TRUE(WriteStatusFile(&env, "/s/status.json", Sample()).ok());
  env.Inject(testing_util::Fault(testing_util::FaultOp::kAppend, ENOSPC));
  AgentStatus changed = Sample();
  changed.files_tracked = 1;
  Status s = WriteStatusFile(&env, "/s/status.json", changed);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("status.json"), std::string::npos) << s.message();
  AgentStatus back;
  ASSERT_TRUE(ReadStatusFile(&env, "/s/status.json", &back).ok());
  EXPECT_EQ(back, Sample());
  EXPECT_FALSE(mem.Exists("/s/status.json.tmp"));
}

TEST(StatusFileTest, UnwritableDirectoryFails) {
  // (Never aim this at /dev/full: the atomic writer, run as root, would rename a regular file
  // over the device. The agent writes <state dir>/status.json only; a full disk is the
  // FaultEnv test above, and `status --json > /dev/full` is in cli_test.cc.)
  if (::geteuid() != 0) {
    testing_util::TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0500), 0);
    EXPECT_FALSE(WriteStatusFile(Env::Default(), dir / "status.json", Sample()).ok());
    ::chmod(dir.path().c_str(), 0700);
  }
  testing_util::TempDir dir;
  testing_util::WriteFile(dir / "file", "x");
  EXPECT_FALSE(WriteStatusFile(Env::Default(), dir / "file/status.json", Sample()).ok());
}

TEST(StatusFileTest, ReadErrors) {
  testing_util::TempDir dir;
  AgentStatus back;
  EXPECT_EQ(ReadStatusFile(Env::Default(), dir / "none.json", &back).code(),
            Status::Code::kNotFound);
  EXPECT_FALSE(ReadStatusFile(Env::Default(), dir.path(), &back).ok());
  testing_util::WriteFile(dir / "torn.json", "{\"pid\": 12");
  Status s = ReadStatusFile(Env::Default(), dir / "torn.json", &back);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("torn.json"), std::string::npos);
  EXPECT_FALSE(ReadStatusFile(Env::Default(), "/dev/zero", &back).ok());  // bounded read
}

}  // namespace
}  // namespace ccmon
