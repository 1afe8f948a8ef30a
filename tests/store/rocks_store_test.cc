// OpenRocksStore's errors (a directory in use, not a database, corrupted, unreadable, not
// writable) and a full disk, for real: a small tmpfs when this process may mount one.
#include "store/rocks_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_test_util.h"
#include "testing/temp_dir.h"

namespace ccmon {
namespace {

using testing_util::Dump;
using testing_util::TempDir;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

Status Put(KvStore* store, const std::string& k, const std::string& v, bool sync = true) {
  WriteBatch b;
  b.Put(k, v);
  return store->Write(b, sync);
}

TEST(RocksStoreTest, CreatesMissingParents) {
  TempDir tmp;
  std::unique_ptr<KvStore> store;
  ASSERT_TRUE(OpenRocksStore(tmp / "a/b/state", RocksStoreOptions(), &store).ok());
  ASSERT_TRUE(Put(store.get(), "k", "v").ok());
  EXPECT_TRUE(std::filesystem::exists(tmp / "a/b/state/CURRENT"));
}

TEST(RocksStoreTest, SecondOpenInThisProcessIsRefused) {
  TempDir tmp;
  std::unique_ptr<KvStore> first, second;
  ASSERT_TRUE(OpenRocksStore(tmp.path(), RocksStoreOptions(), &first).ok());
  Status s = OpenRocksStore(tmp.path(), RocksStoreOptions(), &second);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_TRUE(Contains(s.message(), "state dir " + tmp.path() + " is in use")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "(RocksDB LOCK)")) << s.message();
  EXPECT_EQ(second, nullptr);
  first.reset();
  EXPECT_TRUE(OpenRocksStore(tmp.path(), RocksStoreOptions(), &second).ok());
}

// Another process holds RocksDB's LOCK file the way RocksDB does (an fcntl write lock on the
// whole file). The child only makes async-signal-safe calls, so forking a process that runs
// RocksDB's threads is safe.
TEST(RocksStoreTest, DirectoryLockedByAnotherProcessIsNamed) {
  TempDir tmp;
  {
    std::unique_ptr<KvStore> store;
    ASSERT_TRUE(OpenRocksStore(tmp.path(), RocksStoreOptions(), &store).ok());
  }
  const std::string lock_path = tmp / "LOCK";
  int locked[2], release[2];
  ASSERT_EQ(::pipe(locked), 0);
  ASSERT_EQ(::pipe(release), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open(lock_path.c_str(), O_RDWR);
    struct flock f = {};
    f.l_type = F_WRLCK;
    f.l_whence = SEEK_SET;
    char ok = (fd >= 0 && ::fcntl(fd, F_SETLK, &f) == 0) ? 'y' : 'n';
    if (::write(locked[1], &ok, 1) != 1) ::_exit(2);
    char c;
    while (::read(release[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  char ok = 0;
  ASSERT_EQ(::read(locked[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y') << "the child could not lock " << lock_path;

  std::unique_ptr<KvStore> store;
  Status s = OpenRocksStore(tmp.path(), RocksStoreOptions(), &store);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_TRUE(Contains(s.message(),
                       "state dir " + tmp.path() + " is in use by another process (RocksDB LOCK)"))
      << s.message();

  ASSERT_EQ(::write(release[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (int fd : {locked[0], locked[1], release[0], release[1]}) ::close(fd);
  // The lock died with the child.
  EXPECT_TRUE(OpenRocksStore(tmp.path(), RocksStoreOptions(), &store).ok());
}

TEST(RocksStoreTest, DirectoryWithOtherFilesIsNotADatabase) {
  TempDir tmp;
  WriteFile(tmp / "notes.txt", "mine");
  std::unique_ptr<KvStore> store;
  Status s = OpenRocksStore(tmp.path(), RocksStoreOptions(), &store);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "state dir " + tmp.path() + " is not a RocksDB database"))
      << s.message();
  EXPECT_TRUE(Contains(s.message(), "notes.txt")) << s.message();
  EXPECT_EQ(testing_util::Listing(tmp.path()), std::vector<std::string>{"notes.txt"});
}

TEST(RocksStoreTest, InterruptedCreationIsStillOurs) {
  TempDir tmp;
  WriteFile(tmp / "LOCK", "");
  WriteFile(tmp / "LOG", "started\n");
  std::unique_ptr<KvStore> store;
  Status s = OpenRocksStore(tmp.path(), RocksStoreOptions(), &store);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(RocksStoreTest, PathThatIsAFileCannotBeCreated) {
  TempDir tmp;
  WriteFile(tmp / "file", "x");
  std::unique_ptr<KvStore> store;
  Status s = OpenRocksStore(tmp / "file", RocksStoreOptions(), &store);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_TRUE(Contains(s.message(), tmp / "file")) << s.message();
  s = OpenRocksStore(tmp / "file/below", RocksStoreOptions(), &store);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), tmp / "file/below")) << s.message();
  EXPECT_EQ(OpenRocksStore("", RocksStoreOptions(), &store).code(), Status::Code::kInvalidArgument);
}

TEST(RocksStoreTest, GarbageCurrentFileIsCorruption) {
  TempDir tmp;
  {
    std::unique_ptr<KvStore> store;
    ASSERT_TRUE(OpenRocksStore(tmp.path(), RocksStoreOptions(), &store).ok());
    ASSERT_TRUE(Put(store.get(), "k", "v").ok());
  }
  WriteFile(tmp / "CURRENT", "garbage");
  std::unique_ptr<KvStore> store;
  Status s = OpenRocksStore(tmp.path(), RocksStoreOptions(), &store);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "state dir " + tmp.path() + " is corrupted")) << s.message();
}

TEST(RocksStoreTest, DamagedTableIsReportedAsCorruption) {
  TempDir tmp;
  RocksStoreOptions options;
  options.write_buffer_bytes = 64 << 10;  // flush to table files early
  std::string value(4096, 'v');
  {
    std::unique_ptr<KvStore> store;
    ASSERT_TRUE(OpenRocksStore(tmp.path(), options, &store).ok());
    for (int i = 0; i < 200; ++i) {
      for (size_t j = 0; j < value.size(); j += 97) value[j] = char('a' + (i + j) % 26);
      ASSERT_TRUE(Put(store.get(), "key" + std::to_string(1000 + i), value, false).ok());
    }
  }
  int tables = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    if (e.path().extension() != ".sst") continue;
    ++tables;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = std::filesystem::file_size(e.path());
    for (uint64_t pos = 64; pos + 64 < size / 2; pos += 512) {  // data blocks come first
      f.seekp(std::streamoff(pos));
      f.write("\xde\xad\xbe\xef", 4);
    }
  }
  ASSERT_GT(tables, 0) << "nothing was flushed to a table file";
  std::unique_ptr<KvStore> store;
  Status s = OpenRocksStore(tmp.path(), options, &store);
  if (s.ok()) {
    auto it = store->NewIterator();
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
    }
    s = it->status();
  }
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "state dir " + tmp.path())) << s.message();
}

// Root ignores permission bits; this drops the file-permission capabilities from this thread's
// effective set (Linux capabilities are per thread, and OpenRocksStore works on the calling
// thread) and restores them after.
class WithoutDacOverride {
 public:
  WithoutDacOverride() {
    if (::geteuid() != 0) return;
    header_.version = _LINUX_CAPABILITY_VERSION_3;
    if (::syscall(SYS_capget, &header_, saved_) != 0) return;
    __user_cap_data_struct reduced[2];
    std::memcpy(reduced, saved_, sizeof(saved_));
    for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH}) {
      reduced[cap / 32].effective &= ~(1u << (cap % 32));
    }
    dropped_ = ::syscall(SYS_capset, &header_, reduced) == 0;
  }
  ~WithoutDacOverride() {
    if (dropped_) ::syscall(SYS_capset, &header_, saved_);
  }
  // Whether permission bits now apply to this thread.
  bool effective() const { return ::geteuid() != 0 || dropped_; }

 private:
  __user_cap_header_struct header_{};
  __user_cap_data_struct saved_[2]{};
  bool dropped_ = false;
};

TEST(RocksStoreTest, UnreadableAndUnwritableDirectories) {
  TempDir tmp;
  const std::string dir = tmp / "state";
  {
    std::unique_ptr<KvStore> store;
    ASSERT_TRUE(OpenRocksStore(dir, RocksStoreOptions(), &store).ok());
    ASSERT_TRUE(Put(store.get(), "k", "v").ok());
  }
  for (mode_t mode : {0000, 0555}) {
    SCOPED_TRACE(mode);
    ASSERT_EQ(::chmod(dir.c_str(), mode), 0);
    Status s;
    {
      WithoutDacOverride no_override;
      if (!no_override.effective()) {
        ::chmod(dir.c_str(), 0755);
        GTEST_SKIP() << "cannot drop CAP_DAC_OVERRIDE, so permissions cannot be tested";
      }
      std::unique_ptr<KvStore> store;
      s = OpenRocksStore(dir, RocksStoreOptions(), &store);
    }
    ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
    EXPECT_EQ(s.code(), Status::Code::kIoError) << s.ToString();
    EXPECT_TRUE(Contains(s.message(), dir)) << s.message();
    EXPECT_TRUE(Contains(s.message(), "Permission denied")) << s.message();
  }
  std::unique_ptr<KvStore> store;
  ASSERT_TRUE(OpenRocksStore(dir, RocksStoreOptions(), &store).ok());
  std::string v;
  EXPECT_TRUE(store->Get("k", &v).ok());
}

// A tmpfs of `size` mounted at a fresh directory, unmounted at destruction. mounted() is false
// (with why()) when this process may not mount.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(const std::string& size) {
    path_ = tmp_ / "mnt";
    std::filesystem::create_directory(path_);
    std::string opts = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      why_ = std::strerror(errno);
    }
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  TempDir tmp_;
  std::string path_;
  bool mounted_ = false;
  std::string why_;
};

// The disk fills up under RocksDB: the failing write reports it, nothing written before is lost,
// RocksDB refuses writes (its background error) while reads go on, and once space is freed the
// next write resumes the store. A reopen then finds exactly the acknowledged writes.
TEST(RocksStoreTest, FullDiskFailsWritesLosesNothingAndRecovers) {
  SmallTmpfs fs("4m");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs to fill (" << fs.why() << ")";
  // Ballast to free later: the only way to give RocksDB space back.
  {
    std::ofstream ballast(fs / "ballast", std::ios::binary);
    std::string mib(1 << 20, 'b');
    for (int i = 0; i < 2; ++i) ballast << mib;
    ASSERT_TRUE(ballast.good());
  }
  const std::string dir = fs / "state";
  std::mutex log_mu;
  std::vector<std::string> log;
  RocksStoreOptions options;
  options.log = [&](std::string_view msg) {
    std::lock_guard<std::mutex> lock(log_mu);
    log.emplace_back(msg);
  };
  std::unique_ptr<KvStore> store;
  ASSERT_TRUE(OpenRocksStore(dir, options, &store).ok());

  // Compressible values: the WAL holds them raw, so the disk fills, while the table file the
  // recovery flush writes is small.
  std::vector<std::string> acked;
  Status failure;
  std::string value(16 << 10, 'x');
  for (int i = 0; i < 1000; ++i) {
    std::string key = "key" + std::to_string(100000 + i);
    value.replace(0, key.size(), key);
    Status s = Put(store.get(), key, value);
    if (!s.ok()) {
      failure = s;
      break;
    }
    acked.push_back(key);
  }
  ASSERT_FALSE(failure.ok()) << "4 MiB never filled up";
  ASSERT_GT(acked.size(), 10u);
  EXPECT_EQ(failure.code(), Status::Code::kIoError);
  EXPECT_TRUE(Contains(failure.message(), "state dir " + dir)) << failure.message();
  EXPECT_TRUE(Contains(failure.message(), "disk full")) << failure.message();
  {
    // RocksDB's own warning reached the log function (and no LOG file was written).
    std::lock_guard<std::mutex> lock(log_mu);
    bool seen = false;
    for (const std::string& line : log) seen = seen || Contains(line, "No space left on device");
    EXPECT_TRUE(seen) << log.size() << " messages";
    for (const std::string& line : log) EXPECT_TRUE(line.empty() || line.back() != '\n');
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/LOG"));

  // Reads go on; every acknowledged write is there.
  for (const std::string& k : acked) {
    std::string v;
    ASSERT_TRUE(store->Get(k, &v).ok()) << k;
    EXPECT_EQ(v.substr(0, k.size()), k);
  }
  EXPECT_EQ(Dump(store.get()).size(), acked.size());

  // Still full: the next write tries to resume, and fails again.
  Status again = Put(store.get(), "while-full", "x");
  EXPECT_EQ(again.code(), Status::Code::kIoError) << again.ToString();
  EXPECT_TRUE(Contains(again.message(), "state dir " + dir)) << again.message();

  // Space comes back: the next write resumes the store and succeeds.
  std::filesystem::remove(fs / "ballast");
  Status after = Put(store.get(), "after", "recovered");
  ASSERT_TRUE(after.ok()) << after.ToString();
  std::string v;
  EXPECT_TRUE(store->Get("after", &v).ok());
  EXPECT_EQ(v, "recovered");

  store.reset();
  ASSERT_TRUE(OpenRocksStore(dir, options, &store).ok());
  std::vector<std::string> keys;
  for (const auto& [k, val] : Dump(store.get())) keys.push_back(k);
  std::vector<std::string> want = acked;
  want.push_back("after");
  std::sort(want.begin(), want.end());
  EXPECT_EQ(keys, want);  // the failed writes are not there, the acknowledged ones all are
}

// The agent restarts while the disk is still full: closing the store in RocksDB's error state,
// and opening it with no space left, must neither crash nor lose acknowledged writes.
TEST(RocksStoreTest, RestartWhileDiskIsFull) {
  SmallTmpfs fs("4m");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs to fill (" << fs.why() << ")";
  {
    std::ofstream ballast(fs / "ballast", std::ios::binary);
    ballast << std::string(2 << 20, 'b');
    ASSERT_TRUE(ballast.good());
  }
  const std::string dir = fs / "state";
  std::vector<std::string> acked;
  {
    std::unique_ptr<KvStore> store;
    ASSERT_TRUE(OpenRocksStore(dir, RocksStoreOptions(), &store).ok());
    std::string value(16 << 10, 'y');
    for (int i = 0; i < 1000; ++i) {
      std::string key = "key" + std::to_string(100000 + i);
      if (!Put(store.get(), key, value).ok()) break;
      acked.push_back(key);
    }
    ASSERT_LT(acked.size(), 1000u) << "4 MiB never filled up";
  }  // closed in the error state, disk full
  // Fill whatever the close may have freed.
  {
    std::ofstream more(fs / "more", std::ios::binary);
    more << std::string(1 << 20, 'm');
  }
  std::unique_ptr<KvStore> store;
  Status s = OpenRocksStore(dir, RocksStoreOptions(), &store);
  RecordProperty("open_while_full", s.ok() ? "ok" : s.message());
  if (s.ok()) {
    // Opened without needing space: reads work, and writes fail cleanly until space returns.
    std::string v;
    EXPECT_TRUE(store->Get(acked.front(), &v).ok());
    store.reset();
  } else {
    EXPECT_EQ(s.code(), Status::Code::kIoError) << s.ToString();
    EXPECT_TRUE(Contains(s.message(), "state dir " + dir)) << s.message();
  }
  std::filesystem::remove(fs / "ballast");
  std::filesystem::remove(fs / "more");
  s = OpenRocksStore(dir, RocksStoreOptions(), &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::string> keys;
  for (const auto& [k, v] : Dump(store.get())) keys.push_back(k);
  EXPECT_EQ(keys, acked);
  EXPECT_TRUE(Put(store.get(), "after", "x").ok());
}

}  // namespace
}  // namespace ccmon
