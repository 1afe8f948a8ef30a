// AtomicFileWriter (base/atomic_file.h): a failure at any step leaves the target as it was (old
// content, or still absent) and no temporary file behind; the error names the path.
#include "base/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "testing/fault_env.h"
#include "testing/mem_env.h"
#include "testing/temp_dir.h"

namespace ccmon {
namespace {

using testing_util::Fault;
using testing_util::FaultEnv;
using testing_util::FaultOp;
using testing_util::MemEnv;
using testing_util::TempDir;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const std::string kTarget = "/home/u/.config/ccmon/pricing.json";
const std::string kTemp = kTarget + ".tmp";

// Writes "new content" in two appends through a FaultEnv over a MemEnv; the target holds
// `old_content` before (nullopt: absent).
class AtomicFileFaults
    : public ::testing::TestWithParam<std::tuple<FaultOp, std::optional<std::string>>> {
 protected:
  void SetUp() override {
    mem_.AddDir("/home/u");
    if (old()) mem_.AddFile(kTarget, *old());
  }
  const std::optional<std::string>& old() const { return std::get<1>(GetParam()); }
  FaultOp op() const { return std::get<0>(GetParam()); }

  Status WriteNew() {
    std::unique_ptr<AtomicFileWriter> w;
    Status s = AtomicFileWriter::Open(&env_, kTarget, 0644, &w);
    if (!s.ok()) return s;
    s = w->Append("new ");
    if (!s.ok()) return w->Commit().ok() ? Status::IoError("commit after a failed append") : s;
    s = w->Append("content");
    if (!s.ok()) return s;  // the writer is destroyed: the temp file must go
    return w->Commit();
  }

  MemEnv mem_;
  FaultEnv env_{&mem_};
};

TEST_P(AtomicFileFaults, FailureLeavesTheTargetAsItWasAndNoTempFile) {
  const int error = op() == FaultOp::kAppend            ? ENOSPC
                    : op() == FaultOp::kNewWritableFile ? EMFILE
                                                        : EIO;
  env_.Inject(Fault(op(), error));
  Status s = WriteNew();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_TRUE(Contains(s.message(), kTarget)) << s.message();
  EXPECT_TRUE(Contains(s.message(), std::strerror(error))) << s.message();
  EXPECT_EQ(env_.failures(op()), 1);
  EXPECT_FALSE(mem_.Exists(kTemp));
  if (op() == FaultOp::kSyncDir) {
    // The rename happened: the new content is in place, but may not survive a crash, which the
    // error reports.
    EXPECT_EQ(mem_.Contents(kTarget), "new content");
    EXPECT_TRUE(Contains(s.message(), "/home/u/.config/ccmon")) << s.message();
  } else {
    EXPECT_EQ(mem_.Contents(kTarget), old());
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, AtomicFileFaults,
    ::testing::Combine(::testing::Values(FaultOp::kCreateDirs, FaultOp::kNewWritableFile,
                                         FaultOp::kAppend, FaultOp::kSync, FaultOp::kClose,
                                         FaultOp::kRename, FaultOp::kSyncDir),
                       ::testing::Values(std::optional<std::string>(),
                                         std::optional<std::string>("old content"))));

TEST(AtomicFileWriter, SecondAppendFailingKillsTheWriter) {
  MemEnv mem;
  mem.AddFile(kTarget, "old");
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kAppend, ENOSPC).Nth(2));
  std::unique_ptr<AtomicFileWriter> w;
  ASSERT_TRUE(AtomicFileWriter::Open(&env, kTarget, 0644, &w).ok());
  EXPECT_EQ(w->temp_path(), kTemp);
  ASSERT_TRUE(w->Append("a").ok());
  Status s = w->Append("b");
  EXPECT_EQ(s.message(), kTemp + ": write: No space left on device");
  EXPECT_EQ(w->Append("c").message(), s.message());  // stays failed, no further writes
  EXPECT_EQ(env.calls(FaultOp::kAppend), 2);
  EXPECT_EQ(w->Commit().message(), s.message());
  EXPECT_FALSE(mem.Exists(kTemp));
  EXPECT_EQ(mem.Contents(kTarget), "old");
  EXPECT_EQ(env.calls(FaultOp::kRename), 0);
}

// kDurable fsyncs the file and its directory; kNone neither, and replaces the file the same way
// (a failure before the rename still leaves the target as it was).
TEST(AtomicFileWriter, CommitSyncDecidesTheFsyncsAndNothingElse) {
  MemEnv mem;
  FaultEnv env(&mem);
  mem.AddDir("/d");
  ASSERT_TRUE(WriteFileAtomically(&env, "/d/f", "one").ok());
  EXPECT_EQ(env.calls(FaultOp::kSync), 1);
  EXPECT_EQ(env.calls(FaultOp::kSyncDir), 1);
  ASSERT_TRUE(WriteFileAtomically(&env, "/d/f", "two", 0644, CommitSync::kNone).ok());
  EXPECT_EQ(env.calls(FaultOp::kSync), 1);
  EXPECT_EQ(env.calls(FaultOp::kSyncDir), 1);
  EXPECT_EQ(mem.Contents("/d/f"), "two");
  EXPECT_FALSE(mem.Exists("/d/f.tmp"));
  env.Inject(Fault(FaultOp::kRename, EIO));
  EXPECT_FALSE(WriteFileAtomically(&env, "/d/f", "three", 0644, CommitSync::kNone).ok());
  EXPECT_EQ(mem.Contents("/d/f"), "two");
  EXPECT_FALSE(mem.Exists("/d/f.tmp"));
}

TEST(AtomicFileWriter, SuccessReplacesTheTargetAndCreatesParents) {
  MemEnv mem;
  FaultEnv env(&mem);
  ASSERT_TRUE(WriteFileAtomically(&env, kTarget, "v1").ok());
  EXPECT_EQ(mem.Contents(kTarget), "v1");
  ASSERT_TRUE(WriteFileAtomically(&env, kTarget, "version two").ok());
  EXPECT_EQ(mem.Contents(kTarget), "version two");
  EXPECT_FALSE(mem.Exists(kTemp));
  EXPECT_EQ(env.calls(FaultOp::kSync), 2);
  EXPECT_EQ(env.calls(FaultOp::kSyncDir), 2);
  EXPECT_EQ(mem.AllPaths(), (std::vector<std::string>{"/", "/home", "/home/u", "/home/u/.config",
                                                      "/home/u/.config/ccmon", kTarget}));
}

TEST(AtomicFileWriter, AbandonedWriterRemovesItsTempFile) {
  MemEnv mem;
  mem.AddFile(kTarget, "old");
  {
    std::unique_ptr<AtomicFileWriter> w;
    ASSERT_TRUE(AtomicFileWriter::Open(&mem, kTarget, 0644, &w).ok());
    ASSERT_TRUE(w->Append("half of it").ok());
    EXPECT_TRUE(mem.Exists(kTemp));
  }
  EXPECT_FALSE(mem.Exists(kTemp));
  EXPECT_EQ(mem.Contents(kTarget), "old");
}

TEST(AtomicFileWriter, CommitTwiceAndAppendAfterCommitAreErrors) {
  MemEnv mem;
  std::unique_ptr<AtomicFileWriter> w;
  ASSERT_TRUE(AtomicFileWriter::Open(&mem, "/out", 0644, &w).ok());
  ASSERT_TRUE(w->Append("x").ok());
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(w->Commit().message(), "/out: committed twice");
  EXPECT_EQ(w->Append("y").message(), "/out: write after commit");
  EXPECT_EQ(mem.Contents("/out"), "x");
  std::unique_ptr<AtomicFileWriter> none;
  EXPECT_EQ(AtomicFileWriter::Open(&mem, "", 0644, &none).code(), Status::Code::kInvalidArgument);
}

TEST(AtomicFileWriter, RealFilesystem) {
  TempDir tmp;
  const std::string path = tmp / "a/b/history.om";
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, "# EOF\n", 0600).ok());
  FileInfo info;
  ASSERT_TRUE(Env::Default()->Stat(path, &info).ok());
  EXPECT_EQ(info.size, 6u);
  EXPECT_FALSE(Env::Default()->IsReadable(path + ".tmp"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// Found when a test wrote a status file to /dev/full as root: the rename replaced the device
// node with a regular file. Tested on a FIFO and a directory made here (never on /dev itself).
TEST(AtomicFileWriter, RefusesToReplaceAnythingButARegularFile) {
  TempDir tmp;
  const std::string fifo = tmp / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string dir = tmp / "dir";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string link = tmp / "link-to-fifo";
  ASSERT_EQ(::symlink(fifo.c_str(), link.c_str()), 0);
  for (const std::string& path : {fifo, dir, link}) {
    SCOPED_TRACE(path);
    Status s = WriteFileAtomically(Env::Default(), path, "x", 0600);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(s.message().find("not a regular file"), std::string::npos) << s.message();
    EXPECT_FALSE(Env::Default()->IsReadable(path + ".tmp"));
  }
  struct stat st;
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST(AtomicFileWriter, RealFullDiskKeepsTheOldFile) {
  // Every write to the temporary file fails with ENOSPC, as on a full file system.
  TempDir tmp;
  const std::string path = tmp / "pricing.json";
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, "old").ok());
  FaultEnv env(Env::Default());
  env.Inject(Fault(FaultOp::kAppend, ENOSPC));
  std::unique_ptr<AtomicFileWriter> w;
  ASSERT_TRUE(AtomicFileWriter::Open(&env, path, 0644, &w).ok());
  Status s = w->Append(std::string(1 << 20, 'x'));
  EXPECT_EQ(s.message(), path + ".tmp: write: No space left on device");
  EXPECT_FALSE(w->Commit().ok());
  FileInfo info;
  EXPECT_EQ(Env::Default()->LinkStat(path + ".tmp", &info).code(), Status::Code::kNotFound);
  std::string content;
  ASSERT_TRUE(ReadFileToString(Env::Default(), path, 100, &content).ok());
  EXPECT_EQ(content, "old");
}

TEST(AtomicFileWriter, RealSymlinkAtTheTempPathIsNotFollowed) {
  // Another user plants PATH.tmp -> a file of the victim's (in /tmp, or any shared directory)
  // before the victim writes PATH: the write must neither truncate nor fill the link's target,
  // and PATH must become a regular file, not the planted link.
  TempDir tmp;
  const std::string path = tmp / "history.om";
  const std::string victim = tmp / "victim";
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), victim, "precious").ok());
  ASSERT_EQ(::symlink(victim.c_str(), (path + ".tmp").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, "new content").ok());
  std::string content;
  ASSERT_TRUE(ReadFileToString(Env::Default(), victim, 100, &content).ok());
  EXPECT_EQ(content, "precious");
  FileInfo info;
  ASSERT_TRUE(Env::Default()->LinkStat(path, &info).ok());
  EXPECT_EQ(info.type, FileType::kRegular);
  ASSERT_TRUE(ReadFileToString(Env::Default(), path, 100, &content).ok());
  EXPECT_EQ(content, "new content");
  EXPECT_EQ(Env::Default()->LinkStat(path + ".tmp", &info).code(), Status::Code::kNotFound);

  // A link to a path that does not exist yet is not followed either (O_CREAT would create it).
  const std::string nowhere = tmp / "created-through-the-link";
  ASSERT_EQ(::symlink(nowhere.c_str(), (path + ".tmp").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, "third").ok());
  EXPECT_EQ(Env::Default()->LinkStat(nowhere, &info).code(), Status::Code::kNotFound);
}

TEST(AtomicFileWriter, StaleTempFileIsReplacedAndAnUnremovableOneIsAnError) {
  MemEnv mem;
  mem.AddFile(kTarget, "old");
  mem.AddFile(kTemp, "left by a killed run");
  ASSERT_TRUE(WriteFileAtomically(&mem, kTarget, "new").ok());
  EXPECT_EQ(mem.Contents(kTarget), "new");
  EXPECT_FALSE(mem.Exists(kTemp));

  // A directory at PATH.tmp cannot be removed: nothing is written, the target stays.
  mem.AddDir(kTemp);
  Status s = WriteFileAtomically(&mem, kTarget, "newer");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), kTemp)) << s.message();
  EXPECT_EQ(mem.Contents(kTarget), "new");
}

TEST(Env, NewExclusiveFileNeverOpensWhatExists) {
  TempDir tmp;
  Env* env = Env::Default();
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(env->NewExclusiveFile(tmp / "a", &f).ok());
  ASSERT_TRUE(f->Append("x").ok());
  ASSERT_TRUE(f->Close().ok());
  Status s = env->NewExclusiveFile(tmp / "a", &f);
  EXPECT_EQ(s.message(), tmp / "a" + ": create: File exists");
  ASSERT_EQ(::symlink((tmp / "b").c_str(), (tmp / "link").c_str()), 0);
  EXPECT_FALSE(env->NewExclusiveFile(tmp / "link", &f).ok());
  FileInfo info;
  EXPECT_EQ(env->Stat(tmp / "b", &info).code(), Status::Code::kNotFound);

  MemEnv mem;
  mem.AddFile("/d/a", "x");
  mem.AddSymlink("/d/b", "/d/link");
  EXPECT_EQ(mem.NewExclusiveFile("/d/a", &f).message(), "/d/a: create: File exists");
  EXPECT_FALSE(mem.NewExclusiveFile("/d/link", &f).ok());
  EXPECT_FALSE(mem.Exists("/d/b"));
  ASSERT_TRUE(mem.NewExclusiveFile("/d/c", &f).ok());
  EXPECT_TRUE(mem.Exists("/d/c"));
}

}  // namespace
}  // namespace ccmon
