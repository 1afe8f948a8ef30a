// FileIdentity (tail/file_identity.h) and the Env additions it needs (SequentialFile::Stat and
// Seek on the POSIX Env, MemEnv and FaultEnv).
#include "tail/file_identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
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

// Published FNV-1a 64 test vectors (the fingerprints on disk depend on this exact function).
TEST(Fnv1a64, KnownVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(Fnv1a64, ContinuesFromAPrefix) {
  EXPECT_EQ(Fnv1a64("bar", Fnv1a64("foo")), Fnv1a64("foobar"));
  EXPECT_NE(Fnv1a64("foobar"), Fnv1a64("foobaR"));
}

class OpenFileConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "mem") {
      env_ = &mem_;
      root_ = "/t";
      mem_.AddDir(root_);
    } else {
      root_ = tmp_.path();
      env_ = GetParam() == "fault" ? static_cast<Env*>(&fault_) : Env::Default();
    }
  }
  void Write(const std::string& path, const std::string& content) {
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(env_->NewWritableFile(path, &f).ok());
    ASSERT_TRUE(f->Append(content).ok());
    ASSERT_TRUE(f->Close().ok());
  }
  std::string P(const std::string& rel) const { return root_ + "/" + rel; }

  TempDir tmp_;
  MemEnv mem_;
  FaultEnv fault_{Env::Default()};
  Env* env_ = nullptr;
  std::string root_;
};

TEST_P(OpenFileConformance, StatOfAnOpenFileFollowsTheFileNotThePath) {
  Write(P("a"), "0123456789");
  std::unique_ptr<SequentialFile> f;
  ASSERT_TRUE(env_->NewSequentialFile(P("a"), 0, &f).ok());
  FileInfo by_path, by_fd;
  ASSERT_TRUE(env_->Stat(P("a"), &by_path).ok());
  ASSERT_TRUE(f->Stat(&by_fd).ok());
  EXPECT_EQ(by_fd.type, FileType::kRegular);
  EXPECT_EQ(by_fd.size, 10u);
  EXPECT_EQ(by_fd.inode, by_path.inode);
  EXPECT_EQ(by_fd.device, by_path.device);
  // Replaced under its name: the open file is still the old one.
  Write(P("b"), "other");
  ASSERT_TRUE(env_->RenameFile(P("b"), P("a")).ok());
  ASSERT_TRUE(f->Stat(&by_fd).ok());
  EXPECT_EQ(by_fd.inode, by_path.inode);
  EXPECT_EQ(by_fd.size, 10u);
  ASSERT_TRUE(env_->Stat(P("a"), &by_path).ok());
  EXPECT_NE(by_fd.inode, by_path.inode);
}

TEST_P(OpenFileConformance, SeekMovesTheReadPosition) {
  Write(P("a"), "0123456789");
  std::unique_ptr<SequentialFile> f;
  ASSERT_TRUE(env_->NewSequentialFile(P("a"), 2, &f).ok());
  char buf[4];
  size_t got = 0;
  ASSERT_TRUE(f->Read(buf, 3, &got).ok());
  EXPECT_EQ(std::string(buf, got), "234");
  ASSERT_TRUE(f->Seek(7).ok());
  ASSERT_TRUE(f->Read(buf, 4, &got).ok());
  EXPECT_EQ(std::string(buf, got), "789");
  ASSERT_TRUE(f->Seek(0).ok());
  ASSERT_TRUE(f->Read(buf, 2, &got).ok());
  EXPECT_EQ(std::string(buf, got), "01");
  ASSERT_TRUE(f->Seek(1000).ok());  // past the end: end of file
  ASSERT_TRUE(f->Read(buf, 4, &got).ok());
  EXPECT_EQ(got, 0u);
}

INSTANTIATE_TEST_SUITE_P(Envs, OpenFileConformance, ::testing::Values("posix", "mem", "fault"));

TEST(OpenFile, TheDefaultsOfOtherImplementationsAreErrors) {
  struct Minimal : SequentialFile {
    Status Read(char*, size_t, size_t* got) override {
      *got = 0;
      return Status::Ok();
    }
  } file;
  FileInfo info;
  EXPECT_EQ(file.Stat(&info).code(), Status::Code::kIoError);
  EXPECT_EQ(file.Seek(3).code(), Status::Code::kIoError);
}

TEST(OpenFile, FaultEnvFailsStatAndSeekOfOpenFiles) {
  MemEnv mem;
  mem.AddFile("/a", "abc");
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kFileStat, EIO));
  env.Inject(Fault(FaultOp::kSeek, EBADF));
  std::unique_ptr<SequentialFile> f;
  ASSERT_TRUE(env.NewSequentialFile("/a", 0, &f).ok());
  FileInfo info;
  Status s = f->Stat(&info);
  EXPECT_EQ(s.message(), "/a: fstat: Input/output error");
  EXPECT_EQ(f->Seek(1).message(), "/a: seek: Bad file descriptor");
  EXPECT_TRUE(f->Stat(&info).ok());
  EXPECT_EQ(env.failures(FaultOp::kFileStat), 1);
}

TEST(FileHead, ShortFilesAreFingerprintedOnWhatTheyHaveAndExtendedAsTheyGrow) {
  TempDir tmp;
  const std::string path = tmp / "f";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("{\"a\":1}\n", f);
  std::fflush(f);
  FileHead head;
  ASSERT_TRUE(ReadFileHead(Env::Default(), path, &head).ok());
  const FileIdentity short_id = head.Identity();
  EXPECT_EQ(short_id.fingerprint_bytes, 8u);
  EXPECT_EQ(short_id.fingerprint, Fnv1a64("{\"a\":1}\n"));

  const std::string more(3000, 'x');
  std::fputs(more.c_str(), f);
  std::fclose(f);
  ASSERT_TRUE(ReadFileHead(Env::Default(), path, &head).ok());
  EXPECT_TRUE(head.Matches(short_id));  // the grown file is the same file
  const FileIdentity long_id = head.Identity();
  EXPECT_EQ(long_id.fingerprint_bytes, kFingerprintBytes);
  EXPECT_EQ(long_id.fingerprint, Fnv1a64(("{\"a\":1}\n" + more).substr(0, kFingerprintBytes)));
  EXPECT_TRUE(long_id.SameInode(short_id));
  FileIdentity other_inode = short_id;
  other_inode.inode += 1;
  EXPECT_FALSE(head.Matches(other_inode));
}

TEST(FileHead, ADifferentHeadOrAShorterFileDoesNotMatch) {
  MemEnv env;
  env.AddFile("/f", "line one\nline two\n");
  FileHead head;
  ASSERT_TRUE(ReadFileHead(&env, "/f", &head).ok());
  const FileIdentity id = head.Identity();
  ASSERT_TRUE(env.Truncate("/f", 5).ok());  // same inode, shorter than the fingerprint
  ASSERT_TRUE(ReadFileHead(&env, "/f", &head).ok());
  EXPECT_FALSE(head.Matches(id));
  ASSERT_TRUE(env.Truncate("/f", 0).ok());
  std::unique_ptr<WritableFile> w;
  ASSERT_TRUE(env.NewWritableFile("/f", &w).ok());  // same inode (MemEnv truncates in place)
  ASSERT_TRUE(w->Append("LINE ONE\nline two\n").ok());
  ASSERT_TRUE(ReadFileHead(&env, "/f", &head).ok());
  EXPECT_EQ(head.info.inode, id.inode);
  EXPECT_FALSE(head.Matches(id));
}

TEST(FileHead, ErrorsNameThePath) {
  MemEnv mem;
  mem.AddDir("/d");
  mem.AddFile("/f", "abc");
  FileHead head;
  EXPECT_EQ(ReadFileHead(&mem, "/missing", &head).code(), Status::Code::kNotFound);
  EXPECT_EQ(ReadFileHead(&mem, "/d", &head).code(), Status::Code::kIoError);  // EISDIR
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kRead, EIO));
  Status s = ReadFileHead(&env, "/f", &head);
  EXPECT_EQ(s.message(), "/f: read: Input/output error");
  EXPECT_TRUE(head.bytes.empty());
}

TEST(OpenIfSameFile, OpensAtTheOffsetOnlyWhileThePathIsTheSameFile) {
  TempDir tmp;
  Env* env = Env::Default();
  const std::string path = tmp / "s.jsonl";
  auto write = [&](const std::string& p, const std::string& content) {
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(env->NewWritableFile(p, &f).ok());
    ASSERT_TRUE(f->Append(content).ok());
    ASSERT_TRUE(f->Close().ok());
  };
  write(path, "first\nsecond\n");
  FileHead head;
  ASSERT_TRUE(ReadFileHead(env, path, &head).ok());
  const FileIdentity id = head.Identity();

  std::unique_ptr<SequentialFile> f;
  bool same = false;
  ASSERT_TRUE(OpenIfSameFile(env, path, id, 6, &f, &same).ok());
  ASSERT_TRUE(same);
  char buf[16];
  size_t got = 0;
  ASSERT_TRUE(f->Read(buf, sizeof buf, &got).ok());
  EXPECT_EQ(std::string(buf, got), "second\n");

  // Offset past the end: truncated, by the tailer's rules another file.
  ASSERT_TRUE(OpenIfSameFile(env, path, id, 100, &f, &same).ok());
  EXPECT_FALSE(same);
  EXPECT_EQ(f, nullptr);

  write(tmp / "new", "first\nsecond\n");  // same bytes, another inode
  ASSERT_EQ(::rename((tmp / "new").c_str(), path.c_str()), 0);
  ASSERT_TRUE(OpenIfSameFile(env, path, id, 6, &f, &same).ok());
  EXPECT_FALSE(same);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  EXPECT_EQ(OpenIfSameFile(env, path, id, 6, &f, &same).code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace ccmon
