// Env (base/env.h): the POSIX Env and the test MemEnv behave alike (one conformance suite run on
// both), bounded small-file reads, and the FaultEnv used by the failure-path tests.
#include "base/env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

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

Status WriteString(Env* env, const std::string& path, const std::string& content) {
  std::unique_ptr<WritableFile> f;
  Status s = env->NewWritableFile(path, &f);
  if (!s.ok()) return s;
  s = f->Append(content);
  if (s.ok()) s = f->Sync();
  if (s.ok()) s = f->Close();
  return s;
}

std::string ReadAll(Env* env, const std::string& path, uint64_t offset = 0) {
  std::unique_ptr<SequentialFile> f;
  Status s = env->NewSequentialFile(path, offset, &f);
  if (!s.ok()) return "<" + s.message() + ">";
  std::string out;
  char buf[7];  // small on purpose: many reads
  for (;;) {
    size_t got = 0;
    s = f->Read(buf, sizeof buf, &got);
    if (!s.ok()) return "<" + s.message() + ">";
    if (got == 0) return out;
    out.append(buf, got);
  }
}

std::vector<std::string> Names(Env* env, const std::string& dir) {
  std::vector<DirEntry> entries;
  Status s = env->GetChildren(dir, &entries);
  if (!s.ok()) return {"<" + s.message() + ">"};
  std::vector<std::string> out;
  for (const auto& e : entries) {
    const char* t = e.type == FileType::kRegular     ? "f"
                    : e.type == FileType::kDirectory ? "d"
                    : e.type == FileType::kSymlink   ? "l"
                                                     : "?";
    out.push_back(e.name + ":" + t);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The same expectations on the POSIX Env (in a temp dir) and on MemEnv (under /t), so that tests
// written against MemEnv say something about the real thing.
class EnvConformance : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "posix") {
      env_ = Env::Default();
      root_ = tmp_.path();
    } else {
      env_ = &mem_;
      root_ = "/t";
      mem_.AddDir(root_);
    }
  }
  std::string P(const std::string& rel) const { return root_ + "/" + rel; }
  bool posix() const { return env_ != &mem_; }
  void Symlink(const std::string& target, const std::string& link) {
    if (posix()) {
      ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link;
    } else {
      mem_.AddSymlink(target, link);
    }
  }
  void Truncate(const std::string& path, uint64_t size) {
    if (posix()) {
      ASSERT_EQ(::truncate(path.c_str(), off_t(size)), 0) << path;
    } else {
      ASSERT_TRUE(mem_.Truncate(path, size).ok()) << path;
    }
  }

  TempDir tmp_;
  MemEnv mem_;
  Env* env_ = nullptr;
  std::string root_;
};

TEST_P(EnvConformance, WriteThenReadBackFromAnOffset) {
  ASSERT_TRUE(WriteString(env_, P("a.txt"), "hello, world\n").ok());
  EXPECT_EQ(ReadAll(env_, P("a.txt")), "hello, world\n");
  EXPECT_EQ(ReadAll(env_, P("a.txt"), 7), "world\n");
  EXPECT_EQ(ReadAll(env_, P("a.txt"), 100), "");
  // Rewriting truncates.
  ASSERT_TRUE(WriteString(env_, P("a.txt"), "x").ok());
  EXPECT_EQ(ReadAll(env_, P("a.txt")), "x");
  FileInfo info;
  ASSERT_TRUE(env_->Stat(P("a.txt"), &info).ok());
  EXPECT_EQ(info.type, FileType::kRegular);
  EXPECT_EQ(info.size, 1u);
  EXPECT_TRUE(env_->IsReadable(P("a.txt")));
}

TEST_P(EnvConformance, MissingPathsAreNotFoundAndNameThePath) {
  std::unique_ptr<SequentialFile> f;
  Status s = env_->NewSequentialFile(P("nope.jsonl"), 0, &f);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(s.message(), P("nope.jsonl") + ": open")) << s.message();
  FileInfo info;
  s = env_->Stat(P("nope"), &info);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(s.message(), P("nope"))) << s.message();
  std::vector<DirEntry> entries;
  s = env_->GetChildren(P("nodir"), &entries);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(s.message(), P("nodir"))) << s.message();
  EXPECT_FALSE(env_->IsReadable(P("nope")));
  s = env_->RemoveFile(P("nope"));
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  std::unique_ptr<WritableFile> w;
  s = env_->NewWritableFile(P("no/such/dir/file"), &w);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(s.message(), P("no/such/dir/file"))) << s.message();
  s = env_->SyncDir(P("nodir"));
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), P("nodir"))) << s.message();
  s = env_->RenameFile(P("nope"), P("other"));
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), P("nope"))) << s.message();
}

TEST_P(EnvConformance, DirectoriesSymlinksAndTypes) {
  ASSERT_TRUE(env_->CreateDirs(P("d/e/f")).ok());
  ASSERT_TRUE(env_->CreateDirs(P("d/e/f")).ok());  // existing: fine
  ASSERT_TRUE(WriteString(env_, P("d/file"), "12345").ok());
  Symlink("file", P("d/link"));
  Symlink("e", P("d/dirlink"));
  EXPECT_EQ(Names(env_, P("d")),
            (std::vector<std::string>{"dirlink:l", "e:d", "file:f", "link:l"}));
  EXPECT_EQ(Names(env_, P("d/dirlink")), (std::vector<std::string>{"f:d"}));  // followed
  FileInfo file, through_link, link;
  ASSERT_TRUE(env_->Stat(P("d/file"), &file).ok());
  ASSERT_TRUE(env_->Stat(P("d/link"), &through_link).ok());
  ASSERT_TRUE(env_->LinkStat(P("d/link"), &link).ok());
  EXPECT_EQ(through_link.type, FileType::kRegular);
  EXPECT_EQ(through_link.size, 5u);
  EXPECT_EQ(through_link.inode, file.inode);
  EXPECT_EQ(through_link.device, file.device);
  EXPECT_EQ(link.type, FileType::kSymlink);
  EXPECT_NE(link.inode, file.inode);
  FileInfo dir;
  ASSERT_TRUE(env_->Stat(P("d/dirlink"), &dir).ok());
  EXPECT_EQ(dir.type, FileType::kDirectory);
  // A file in the way of mkdir -p.
  Status s = env_->CreateDirs(P("d/file/sub"));
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), P("d/file"))) << s.message();
  EXPECT_TRUE(env_->SyncDir(P("d/e")).ok());
}

TEST_P(EnvConformance, RenameReplacesAndRemoveDeletes) {
  ASSERT_TRUE(WriteString(env_, P("new"), "new content").ok());
  ASSERT_TRUE(WriteString(env_, P("target"), "old content").ok());
  FileInfo before;
  ASSERT_TRUE(env_->Stat(P("new"), &before).ok());
  ASSERT_TRUE(env_->RenameFile(P("new"), P("target")).ok());
  EXPECT_EQ(ReadAll(env_, P("target")), "new content");
  FileInfo after;
  ASSERT_TRUE(env_->Stat(P("target"), &after).ok());
  EXPECT_EQ(after.inode, before.inode);
  EXPECT_EQ(env_->Stat(P("new"), &after).code(), Status::Code::kNotFound);
  ASSERT_TRUE(env_->RemoveFile(P("target")).ok());
  EXPECT_FALSE(env_->IsReadable(P("target")));
}

TEST_P(EnvConformance, AnOpenReaderSeesTruncationAndSurvivesRemoval) {
  ASSERT_TRUE(WriteString(env_, P("f"), "0123456789").ok());
  std::unique_ptr<SequentialFile> f;
  ASSERT_TRUE(env_->NewSequentialFile(P("f"), 0, &f).ok());
  char buf[4];
  size_t got = 0;
  ASSERT_TRUE(f->Read(buf, 4, &got).ok());
  EXPECT_EQ(got, 4u);
  Truncate(P("f"), 6);
  ASSERT_TRUE(f->Read(buf, 4, &got).ok());
  EXPECT_EQ(std::string(buf, got), "45");
  ASSERT_TRUE(f->Read(buf, 4, &got).ok());
  EXPECT_EQ(got, 0u);
  ASSERT_TRUE(env_->RemoveFile(P("f")).ok());
  EXPECT_TRUE(f->Read(buf, 4, &got).ok());
}

INSTANTIATE_TEST_SUITE_P(Envs, EnvConformance, ::testing::Values("posix", "mem"));

TEST(PosixEnv, GetEnvVarReadsTheProcessEnvironment) {
  const char* path = std::getenv("PATH");
  std::optional<std::string> v = Env::Default()->GetEnvVar("PATH");
  ASSERT_EQ(v.has_value(), path != nullptr);
  if (path) {
    EXPECT_EQ(*v, path);
  }
  EXPECT_FALSE(Env::Default()->GetEnvVar("CCMON_SURELY_NOT_SET_4711").has_value());
}

TEST(PosixEnv, AppendAfterCloseIsAnError) {
  TempDir tmp;
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(Env::Default()->NewWritableFile(tmp / "w", &f).ok());
  ASSERT_TRUE(f->Append("abc").ok());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_TRUE(f->Close().ok());  // twice is harmless
  Status s = f->Append("more");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), tmp / "w")) << s.message();
  EXPECT_EQ(ReadAll(Env::Default(), tmp / "w"), "abc");
}

TEST(PosixEnv, LargeAppendsBypassTheBufferInOrder) {
  TempDir tmp;
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(Env::Default()->NewWritableFile(tmp / "w", &f).ok());
  std::string want;
  for (size_t n : {size_t(10), size_t(70000), size_t(3), size_t(200000), size_t(65536)}) {
    std::string piece(n, char('a' + n % 26));
    want += piece;
    ASSERT_TRUE(f->Append(piece).ok());
  }
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_EQ(ReadAll(Env::Default(), tmp / "w"), want);
}

TEST(PosixEnv, RealDevFullFailsWithNoSpace) {
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(Env::Default()->NewWritableFile("/dev/full", &f).ok());
  ASSERT_TRUE(f->Append("buffered").ok());  // small appends are buffered...
  Status s = f->Sync();                     // ...and fail when flushed
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_TRUE(Contains(s.message(), "/dev/full: write: No space left on device")) << s.message();
}

// --- ReadFileToString

TEST(ReadFileToString, ReadsASmallFileWhole) {
  MemEnv env;
  env.AddFile("/cfg/p.json", "{\"a\": 1}\n");
  std::string out = "stale";
  ASSERT_TRUE(ReadFileToString(&env, "/cfg/p.json", 100, &out).ok());
  EXPECT_EQ(out, "{\"a\": 1}\n");
  // Exactly the cap is fine; one byte over is not.
  ASSERT_TRUE(ReadFileToString(&env, "/cfg/p.json", 9, &out).ok());
  Status s = ReadFileToString(&env, "/cfg/p.json", 8, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "/cfg/p.json: larger than 8 bytes, not read");
  EXPECT_TRUE(out.empty());
}

TEST(ReadFileToString, MissingFileNamesThePath) {
  TempDir tmp;
  std::string out;
  Status s = ReadFileToString(Env::Default(), tmp / "token", 1024, &out);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(), tmp / "token" + ": open: No such file or directory");
}

TEST(ReadFileToString, ARegularFileOverTheCapIsNotReadAtAll) {
  MemEnv mem;
  mem.AddGeneratedFile("/big.json", "{", uint64_t(1) << 30);
  FaultEnv env(&mem);
  std::string out;
  Status s = ReadFileToString(&env, "/big.json", kMaxSmallFileBytes, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "/big.json: larger than 67108864 bytes")) << s.message();
  EXPECT_EQ(env.calls(FaultOp::kRead), 0);
  EXPECT_EQ(env.calls(FaultOp::kNewSequentialFile), 0);
}

TEST(ReadFileToString, DevZeroStopsAtTheCap) {
  // /dev/zero has no size: the read loop must stop once the cap is passed, not at bad_alloc.
  FaultEnv env(Env::Default());
  const size_t cap = size_t(1) << 20;
  std::string out;
  Status s = ReadFileToString(&env, "/dev/zero", cap, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "/dev/zero: larger than 1048576 bytes, not read");
  EXPECT_TRUE(out.empty());
  EXPECT_GT(env.bytes_read(), cap);
  EXPECT_LE(env.bytes_read(), cap + (64 << 10));
  // The default cap, on the real device.
  s = ReadFileToString(Env::Default(), "/dev/zero", kMaxSmallFileBytes, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
}

TEST(ReadFileToString, ReadErrorIsReturned) {
  MemEnv mem;
  mem.AddFile("/t", std::string(100000, 'x'));
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kRead, EIO).Nth(2));
  std::string out;
  Status s = ReadFileToString(&env, "/t", 1 << 20, &out);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_EQ(s.message(), "/t: read: Input/output error");
}

// --- The fakes themselves

TEST(MemEnv, SymlinkLoopsAndDanglingLinks) {
  MemEnv env;
  env.AddSymlink("/a/loop2", "/a/loop1");
  env.AddSymlink("/a/loop1", "/a/loop2");
  env.AddSymlink("/a/nowhere", "/a/dangling");
  FileInfo info;
  Status s = env.Stat("/a/loop1", &info);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_TRUE(Contains(s.message(), "Too many levels of symbolic links")) << s.message();
  EXPECT_EQ(env.Stat("/a/dangling", &info).code(), Status::Code::kNotFound);
  ASSERT_TRUE(env.LinkStat("/a/dangling", &info).ok());
  EXPECT_EQ(info.type, FileType::kSymlink);
  // A path through a file is ENOTDIR.
  env.AddFile("/f", "x");
  s = env.Stat("/f/x", &info);
  EXPECT_TRUE(Contains(s.message(), "Not a directory")) << s.message();
}

TEST(MemEnv, UnreadableEntriesCanBeStatedButNotOpened) {
  MemEnv env;
  env.AddFile("/d/f.jsonl", "x");
  ASSERT_TRUE(env.SetReadable("/d", false).ok());
  std::vector<DirEntry> entries;
  Status s = env.GetChildren("/d", &entries);
  EXPECT_EQ(s.message(), "/d: opendir: Permission denied");
  FileInfo info;
  EXPECT_TRUE(env.Stat("/d", &info).ok());
  ASSERT_TRUE(env.SetReadable("/d/f.jsonl", false).ok());
  std::unique_ptr<SequentialFile> f;
  EXPECT_EQ(env.NewSequentialFile("/d/f.jsonl", 0, &f).message(),
            "/d/f.jsonl: open: Permission denied");
  EXPECT_FALSE(env.IsReadable("/d/f.jsonl"));
}

TEST(MemEnv, GeneratedFilesAndHardLinks) {
  MemEnv env;
  env.AddGeneratedFile("/g", "ab", 6, 'z', 1234);
  EXPECT_EQ(ReadAll(&env, "/g"), "abzzzz");
  EXPECT_EQ(ReadAll(&env, "/g", 1), "bzzzz");
  ASSERT_TRUE(env.AddHardLink("/g", "/h").ok());
  FileInfo g, h;
  ASSERT_TRUE(env.Stat("/g", &g).ok());
  ASSERT_TRUE(env.Stat("/h", &h).ok());
  EXPECT_EQ(g.inode, h.inode);
  EXPECT_EQ(g.mtime_ms, 1234);
  ASSERT_TRUE(env.Truncate("/h", 3).ok());
  EXPECT_EQ(ReadAll(&env, "/g"), "abz");
  env.set_report_unknown_types(true);
  std::vector<DirEntry> entries;
  ASSERT_TRUE(env.GetChildren("/", &entries).ok());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].type, FileType::kUnknown);
  ASSERT_TRUE(env.RemoveTree("/g").ok());
  EXPECT_EQ(env.AllPaths(), (std::vector<std::string>{"/", "/h"}));
}

TEST(FaultEnv, FailsTheNthMatchingCallForItsTimes) {
  MemEnv mem;
  mem.AddDir("/p/a");
  mem.AddDir("/p/b");
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kGetChildren, EMFILE).Nth(2).Times(2).OnPath("/p/a"));
  std::vector<DirEntry> entries;
  EXPECT_TRUE(env.GetChildren("/p/a", &entries).ok());
  EXPECT_TRUE(env.GetChildren("/p/b", &entries).ok());  // does not match: not counted
  Status s = env.GetChildren("/p/a", &entries);
  EXPECT_EQ(s.message(), "/p/a: opendir: Too many open files");
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_FALSE(env.GetChildren("/p/a", &entries).ok());
  EXPECT_TRUE(env.GetChildren("/p/a", &entries).ok());
  EXPECT_EQ(env.calls(FaultOp::kGetChildren), 5);
  EXPECT_EQ(env.failures(FaultOp::kGetChildren), 2);
  // ENOENT is kNotFound, as from the POSIX Env; times < 0 is every call from the nth on.
  env.Inject(Fault(FaultOp::kStat, ENOENT).Nth(1).Times(-1));
  FileInfo info;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(env.Stat("/p", &info).code(), Status::Code::kNotFound);
}

TEST(FaultEnv, HooksRunBeforeTheCall) {
  MemEnv mem;
  mem.AddFile("/p/a/x.jsonl", "x");
  FaultEnv env(&mem);
  env.OnCall(FaultOp::kGetChildren, "/p/a", [&](const std::string&) { mem.RemoveTree("/p/a"); });
  std::vector<DirEntry> entries;
  Status s = env.GetChildren("/p/a", &entries);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(), "/p/a: opendir: No such file or directory");
}

}  // namespace
}  // namespace ccmon
