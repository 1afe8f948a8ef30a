// Discovery of transcript files (docs/accounting.md A1, A2). Real directories in a temp dir, and
// trees served by MemEnv with failures injected by FaultEnv; the environment is passed as a
// DiscoveryEnv or a MemEnv, the process environment is never changed.
#include "transcript/discovery.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "testing/fault_env.h"
#include "testing/mem_env.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

namespace fs = std::filesystem;
using testing_util::Fault;
using testing_util::FaultEnv;
using testing_util::FaultOp;
using testing_util::MakeDirs;
using testing_util::MemEnv;
using testing_util::TempDir;
using testing_util::WriteFile;

class DiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = tmp_ / "home";
    MakeDirs(home_);
  }
  std::string Projects(const std::string& config_dir) {
    MakeDirs(config_dir + "/projects");
    return config_dir + "/projects";
  }
  DiscoveryEnv Vars(const std::string& claude_config_dir = "", const std::string& xdg = "") {
    DiscoveryEnv e;
    e.home = home_;
    e.xdg_config_home = xdg;
    e.claude_config_dir = claude_config_dir;
    return e;
  }
  static std::vector<std::string> Paths(const std::vector<TranscriptFile>& files) {
    std::vector<std::string> out;
    for (const auto& f : files) out.push_back(f.path);
    return out;
  }
  TempDir tmp_;
  std::string home_;
};

// The agent watches the projects/ dirs that exist and the ones that may appear later.
TEST_F(DiscoveryTest, A1_WatchedDirsAreTheExistingOnesThenTheOnesToCome) {
  const std::string xdg_default = home_ + "/.config/claude/projects";
  const std::string dot = home_ + "/.claude/projects";
  EXPECT_EQ(ConfigDirs(Vars()),
            (std::vector<std::string>{home_ + "/.config/claude", home_ + "/.claude"}));
  EXPECT_EQ(WatchedProjectDirs(ConfigDirs(Vars()), home_),
            (std::vector<std::string>{xdg_default, dot}));
  Projects(home_ + "/.claude");
  EXPECT_EQ(WatchedProjectDirs(ConfigDirs(Vars()), home_),
            (std::vector<std::string>{dot, xdg_default}));
  // Explicit dirs: "~" expanded, a dir named projects is taken as it is.
  EXPECT_EQ(WatchedProjectDirs({"~/new", "~/other/projects/"}, home_),
            (std::vector<std::string>{home_ + "/new/projects", home_ + "/other/projects"}));
}

TEST_F(DiscoveryTest, A1_DefaultsAreXdgClaudeAndDotClaude) {
  EXPECT_TRUE(ProjectDirs(Vars()).empty());  // nothing exists yet
  std::string dot = Projects(home_ + "/.claude");
  EXPECT_EQ(ProjectDirs(Vars()), (std::vector<std::string>{dot}));
  std::string xdg_default = Projects(home_ + "/.config/claude");
  EXPECT_EQ(ProjectDirs(Vars()), (std::vector<std::string>{xdg_default, dot}));
  // $XDG_CONFIG_HOME replaces ~/.config.
  std::string xdg = Projects(tmp_ / "xdg/claude");
  EXPECT_EQ(ProjectDirs(Vars("", tmp_ / "xdg")), (std::vector<std::string>{xdg, dot}));
  // Blank CLAUDE_CONFIG_DIR counts as unset.
  EXPECT_EQ(ProjectDirs(Vars("  \t ")), (std::vector<std::string>{xdg_default, dot}));
}

TEST_F(DiscoveryTest, A1_ClaudeConfigDirListWithSpacesTildeAndProjectsEntries) {
  Projects(home_ + "/.claude");  // defaults exist but are not used when CLAUDE_CONFIG_DIR is set
  std::string cfg1 = Projects(home_ + "/cfg1");
  std::string cfg2 = Projects(tmp_ / "cfg2");
  std::string home_projects = Projects(home_);
  // cfg2 is named by its projects/ dir; it is named again later through its config dir.
  std::string list =
      " ~/cfg1 ,\t" + cfg2 + ",," + (tmp_ / "missing") + " , ~ ," + (tmp_ / "cfg2") + "/";
  EXPECT_EQ(ProjectDirs(Vars(list)), (std::vector<std::string>{cfg1, cfg2, home_projects}));
  // A single entry, with trailing slashes: the config dir, or its projects/ dir.
  EXPECT_EQ(ProjectDirs(Vars((tmp_ / "cfg2") + "//")), (std::vector<std::string>{cfg2}));
  EXPECT_EQ(ProjectDirs(Vars(cfg2 + "/")), (std::vector<std::string>{cfg2}));
  // "~user" is not expanded.
  EXPECT_TRUE(ProjectDirs(Vars("~cfg1")).empty());
}

TEST_F(DiscoveryTest, A1_EntriesWithoutProjectsAreIgnored) {
  MakeDirs(tmp_ / "no-projects");
  WriteFile(tmp_ / "a-file", "x");
  WriteFile(tmp_ / "file-cfg/projects", "not a dir");
  std::string ok = Projects(tmp_ / "ok");
  std::string list = (tmp_ / "no-projects") + "," + (tmp_ / "a-file") + "," + (tmp_ / "file-cfg") +
                     "," + (tmp_ / "nowhere") + "," + ok;
  EXPECT_EQ(ProjectDirs(Vars(list)), (std::vector<std::string>{ok}));
}

TEST_F(DiscoveryTest, A1_SameProjectsDirReachedTwiceIsListedOnce) {
  std::string real = Projects(home_ + "/.claude");
  ASSERT_EQ(::symlink((home_ + "/.claude").c_str(), (tmp_ / "alias").c_str()), 0);
  ASSERT_EQ(::symlink(real.c_str(), (tmp_ / "projects").c_str()), 0);
  std::string list =
      home_ + "/.claude," + (tmp_ / "alias") + "," + (tmp_ / "projects") + ",~/.claude/";
  EXPECT_EQ(ProjectDirs(Vars(list)), (std::vector<std::string>{real}));
  // XDG pointing at the same place as ~/.claude through a symlink.
  MakeDirs(tmp_ / "xdg");
  ASSERT_EQ(::symlink((home_ + "/.claude").c_str(), (tmp_ / "xdg/claude").c_str()), 0);
  EXPECT_EQ(ProjectDirs(Vars("", tmp_ / "xdg")),
            (std::vector<std::string>{tmp_ / "xdg/claude/projects"}));
}

TEST_F(DiscoveryTest, A1_ExplicitConfigDirsReplaceEverything) {
  Projects(home_ + "/.claude");
  std::string a = Projects(home_ + "/a");
  std::string b = Projects(tmp_ / "b");
  EXPECT_EQ(ProjectDirsFrom({"~/a", b}, home_), (std::vector<std::string>{a, b}));
  EXPECT_TRUE(ProjectDirsFrom({}, home_).empty());
  EXPECT_EQ(ProjectDirsFrom({" " + b + " ", b}, home_), (std::vector<std::string>{b}));
}

TEST(DiscoveryEnvTest, A1_FromProcessReadsTheEnvironment) {
  DiscoveryEnv e = DiscoveryEnv::FromProcess();
  const char* home = std::getenv("HOME");
  EXPECT_EQ(e.home, home ? home : "");
  const char* ccd = std::getenv("CLAUDE_CONFIG_DIR");
  EXPECT_EQ(e.claude_config_dir, ccd ? ccd : "");
}

TEST_F(DiscoveryTest, A2_EveryJsonlBelowProjectsRecursively) {
  std::string p = Projects(home_ + "/.claude");
  WriteFile(p + "/-Users-x-app/sess-1.jsonl", "{}\n");
  WriteFile(p + "/-Users-x-app/sess-1/subagents/agent-a1.jsonl", "{}\n");
  WriteFile(p + "/-Users-x-app/sess-1/subagents/workflows/wf-1/agents/agent-b2.jsonl", "{}\n");
  WriteFile(p + "/-Users-x-app/notes.txt", "no");
  WriteFile(p + "/-Users-x-app/sess-1.jsonl.bak", "no");
  WriteFile(p + "/-Users-x-app/sess-1.JSONL", "no");
  MakeDirs(p + "/-Users-x-app/dir.jsonl");  // a directory is not a transcript...
  WriteFile(p + "/-Users-x-app/dir.jsonl/inner.jsonl", "{}\n");  // ...but what is below it counts
  WriteFile(p + "/top.jsonl", "");
  WriteFile(p + "/-Users-x-app/.jsonl", "no stem");
  ASSERT_EQ(::symlink((p + "/nowhere.jsonl").c_str(), (p + "/broken.jsonl").c_str()), 0);
  std::vector<std::string> warnings;
  auto files = ListTranscripts({p}, &warnings);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(Paths(files),
            (std::vector<std::string>{
                p + "/-Users-x-app/dir.jsonl/inner.jsonl",
                p + "/-Users-x-app/sess-1.jsonl",
                p + "/-Users-x-app/sess-1/subagents/agent-a1.jsonl",
                p + "/-Users-x-app/sess-1/subagents/workflows/wf-1/agents/agent-b2.jsonl",
                p + "/top.jsonl",
            }));
}

TEST_F(DiscoveryTest, A2_FileMetadata) {
  std::string p = Projects(home_ + "/.claude");
  WriteFile(p + "/a/s.jsonl", "0123456789\n");
  testing_util::SetMtimeMs(p + "/a/s.jsonl", 1759040243678);
  auto files = ListTranscripts({p}, nullptr);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].size, 11u);
  EXPECT_EQ(files[0].mtime_ms, 1759040243678);
  struct stat st;
  ASSERT_EQ(::stat((p + "/a/s.jsonl").c_str(), &st), 0);
  EXPECT_EQ(files[0].inode, uint64_t(st.st_ino));
  EXPECT_EQ(files[0].device, uint64_t(st.st_dev));
}

TEST_F(DiscoveryTest, A2_SameFileReachedTwiceIsListedOnce) {
  std::string p = Projects(home_ + "/.claude");
  WriteFile(p + "/-Users-x-app/sess-1.jsonl", "{}\n");
  MakeDirs(p + "/-Users-x-web");
  ASSERT_EQ(::symlink((p + "/-Users-x-app/sess-1.jsonl").c_str(),
                      (p + "/-Users-x-web/link.jsonl").c_str()),
            0);
  ASSERT_EQ(
      ::link((p + "/-Users-x-app/sess-1.jsonl").c_str(), (p + "/-Users-x-web/hard.jsonl").c_str()),
      0);
  auto files = ListTranscripts({p}, nullptr);
  EXPECT_EQ(files.size(), 1u);
  // The same projects dir listed twice under two spellings.
  ASSERT_EQ(::symlink(p.c_str(), (tmp_ / "projects-alias").c_str()), 0);
  WriteFile(p + "/other.jsonl", "{}\n");
  files = ListTranscripts({p, tmp_ / "projects-alias", p + "/"}, nullptr);
  EXPECT_EQ(files.size(), 2u);
}

TEST_F(DiscoveryTest, A2_MissingRootIsAWarningNotAFailure) {
  std::string p = Projects(home_ + "/.claude");
  WriteFile(p + "/x/s.jsonl", "{}\n");
  std::vector<std::string> warnings;
  auto files = ListTranscripts({tmp_ / "gone", p}, &warnings);
  EXPECT_EQ(files.size(), 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].rfind(tmp_ / "gone", 0), 0u) << warnings[0];
  EXPECT_TRUE(ListTranscripts({}, nullptr).empty());
}

TEST_F(DiscoveryTest, A2_EndToEndFromEnvironment) {
  std::string dot = Projects(home_ + "/.claude");
  std::string cfg = Projects(tmp_ / "work-claude");
  WriteFile(dot + "/-home-app/s1.jsonl", "{}\n");
  WriteFile(cfg + "/-home-api/s2.jsonl", "{}\n");
  WriteFile(cfg + "/-home-api/s2/subagents/agent-1.jsonl", "{}\n");
  auto files = ListTranscripts(ProjectDirs(Vars("~/.claude, " + (tmp_ / "work-claude"))), nullptr);
  EXPECT_EQ(Paths(files),
            (std::vector<std::string>{dot + "/-home-app/s1.jsonl", cfg + "/-home-api/s2.jsonl",
                                      cfg + "/-home-api/s2/subagents/agent-1.jsonl"}));
}

// --- Through an Env: MemEnv trees, FaultEnv failures (hostile-trial defects 1 and 2).

std::vector<std::string> Paths(const std::vector<TranscriptFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.path);
  return out;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A projects/ tree of `sessions` session dirs, each with a transcript and a subagent transcript.
std::vector<std::string> AddSessions(MemEnv* mem, const std::string& projects, int sessions) {
  std::vector<std::string> paths;
  for (int i = 0; i < sessions; ++i) {
    const std::string dir = projects + "/-Users-x-app" + std::to_string(i % 3);
    paths.push_back(dir + "/s" + std::to_string(i) + ".jsonl");
    paths.push_back(dir + "/s" + std::to_string(i) + "/subagents/agent-" + std::to_string(i) +
                    ".jsonl");
  }
  for (const std::string& p : paths) mem->AddFile(p, "{}\n", 1000);
  std::sort(paths.begin(), paths.end());
  return paths;
}

TEST(DiscoveryThroughEnv, A1_EnvironmentAndDirectoriesComeFromTheEnv) {
  MemEnv mem;
  mem.SetEnvVar("HOME", "/home/u");
  mem.SetEnvVar("CLAUDE_CONFIG_DIR", "~/work-claude, /srv/claude/projects");
  mem.AddFile("/home/u/work-claude/projects/-p/s.jsonl", "{}\n");
  mem.AddFile("/srv/claude/projects/-q/t.jsonl", "{}\n");
  mem.AddFile("/home/u/.claude/projects/-r/u.jsonl", "{}\n");  // not used: CLAUDE_CONFIG_DIR set
  const DiscoveryEnv vars = DiscoveryEnv::FromEnv(&mem);
  EXPECT_EQ(vars.home, "/home/u");
  EXPECT_EQ(vars.xdg_config_home, "");
  std::vector<std::string> dirs = ProjectDirs(vars, &mem);
  EXPECT_EQ(dirs,
            (std::vector<std::string>{"/home/u/work-claude/projects", "/srv/claude/projects"}));
  DiscoveryResult r = FindTranscripts(dirs, &mem);
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(Paths(r.files), (std::vector<std::string>{"/home/u/work-claude/projects/-p/s.jsonl",
                                                      "/srv/claude/projects/-q/t.jsonl"}));
  mem.UnsetEnvVar("CLAUDE_CONFIG_DIR");
  EXPECT_EQ(ProjectDirs(DiscoveryEnv::FromEnv(&mem), &mem),
            (std::vector<std::string>{"/home/u/.claude/projects"}));
}

TEST(DiscoveryThroughEnv, A2_EntriesOfUnknownTypeAreStatted) {
  // Some file systems do not report entry types: the walk must ask (lstat), and still not follow
  // symlinked directories.
  MemEnv mem;
  std::vector<std::string> want = AddSessions(&mem, "/p", 4);
  mem.AddDir("/elsewhere");
  mem.AddFile("/elsewhere/outside.jsonl", "{}\n");
  mem.AddSymlink("/elsewhere", "/p/linked-dir");
  mem.AddSymlink("/elsewhere/outside.jsonl", "/p/linked-file.jsonl");
  mem.AddSymlink("/p/nowhere.jsonl", "/p/dangling.jsonl");
  mem.AddDir("/p/dir.jsonl");
  for (bool unknown : {false, true}) {
    mem.set_report_unknown_types(unknown);
    DiscoveryResult r = FindTranscripts({"/p"}, &mem);
    EXPECT_TRUE(r.complete()) << r.problems[0];
    std::vector<std::string> expected = want;
    expected.push_back("/p/linked-file.jsonl");
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(Paths(r.files), expected) << "unknown types: " << unknown;
  }
}

TEST(DiscoveryThroughEnv, A2_DirectoryRemovedMidWalkIsReportedAndTheWalkGoesOn) {
  MemEnv mem;
  std::vector<std::string> want = AddSessions(&mem, "/p", 30);
  mem.AddFile("/p/-Users-x-app1/doomed/sub/x.jsonl", "{}\n");
  FaultEnv env(&mem);
  // Someone removes the directory between the listing of its parent and its own opendir.
  env.OnCall(FaultOp::kGetChildren, "/doomed", [&](const std::string& path) {
    if (path == "/p/-Users-x-app1/doomed") mem.RemoveTree(path);
  });
  DiscoveryResult r = FindTranscripts({"/p"}, &env);
  EXPECT_EQ(Paths(r.files), want);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_FALSE(r.complete());
  EXPECT_EQ(r.problems[0],
            "/p/-Users-x-app1/doomed: opendir: No such file or directory (not searched: "
            "transcripts below it are not counted)");
}

TEST(DiscoveryThroughEnv, A2_OutOfFileDescriptorsOnOneDirectory) {
  MemEnv mem;
  std::vector<std::string> want = AddSessions(&mem, "/p", 30);
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kGetChildren, EMFILE).OnPath("/s7/subagents"));
  DiscoveryResult r = FindTranscripts({"/p"}, &env);
  std::vector<std::string> expected;
  for (const auto& p : want)
    if (!Contains(p, "/s7/subagents/")) expected.push_back(p);
  EXPECT_EQ(Paths(r.files), expected);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(Contains(r.problems[0], "/s7/subagents: opendir: Too many open files"))
      << r.problems[0];
}

TEST(DiscoveryThroughEnv, A2_NameTooLongAndStatFailures) {
  MemEnv mem;
  std::vector<std::string> want = AddSessions(&mem, "/p", 10);
  mem.AddFile("/p/-Users-x-app2/broken.jsonl", "{}\n");
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kGetChildren, ENAMETOOLONG).OnPath("/s4"));
  env.Inject(Fault(FaultOp::kStat, EIO).OnPath("/broken.jsonl"));
  // A file removed between the listing and the stat, or a dangling symlink: nothing lost.
  env.Inject(Fault(FaultOp::kStat, ENOENT).OnPath("/s1.jsonl"));
  DiscoveryResult r = FindTranscripts({"/p"}, &env);
  std::vector<std::string> expected;
  for (const auto& p : want)
    if (!Contains(p, "/s4/") && !Contains(p, "/s1.jsonl")) expected.push_back(p);
  EXPECT_EQ(Paths(r.files), expected);
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_EQ(r.problems[0],
            "/p/-Users-x-app1/s4: opendir: File name too long (not searched: transcripts below it "
            "are not counted)");
  EXPECT_EQ(r.problems[1], "/p/-Users-x-app2/broken.jsonl: stat: Input/output error (skipped)");
}

TEST(DiscoveryThroughEnv, A2_UnreadableDirectoriesAreReportedLikeUnreadableFiles) {
  MemEnv mem;
  std::vector<std::string> want = AddSessions(&mem, "/p", 9);
  ASSERT_TRUE(mem.SetReadable("/p/-Users-x-app2", false).ok());
  DiscoveryResult r = FindTranscripts({"/p"}, &mem);
  std::vector<std::string> expected;
  for (const auto& p : want)
    if (!Contains(p, "/-Users-x-app2/")) expected.push_back(p);
  EXPECT_EQ(Paths(r.files), expected);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0],
            "/p/-Users-x-app2: opendir: Permission denied (not searched: transcripts below it "
            "are not counted)");
  // projects/ itself.
  ASSERT_TRUE(mem.SetReadable("/p", false).ok());
  r = FindTranscripts({"/p", "/nowhere"}, &mem);
  EXPECT_TRUE(r.files.empty());
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_TRUE(Contains(r.problems[0], "/nowhere: opendir: No such file or directory"))
      << r.problems[0];
  EXPECT_TRUE(Contains(r.problems[1], "/p: opendir: Permission denied")) << r.problems[1];
}

TEST(DiscoveryThroughEnv, A2_ConfigDirThatCannotBeSearchedIsReported) {
  MemEnv mem;
  mem.AddFile("/a/projects/-p/s.jsonl", "{}\n");
  mem.AddFile("/b/projects/-p/s.jsonl", "{}\n");
  mem.AddFile("/c/not-a-config", "");
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kStat, EACCES).OnPath("/a/projects"));
  std::vector<std::string> problems;
  std::vector<std::string> dirs =
      ProjectDirsFrom({"/a", "/b", "/c/not-a-config", "/missing"}, "/home/u", &env, &problems);
  EXPECT_EQ(dirs, (std::vector<std::string>{"/b/projects"}));
  // Absent projects/ dirs are not problems (A1); one that cannot be examined is.
  EXPECT_EQ(problems, (std::vector<std::string>{"/a/projects: stat: Permission denied (skipped)"}));
}

// --- Real file system

class DiscoveryRealFs : public DiscoveryTest {};

TEST_F(DiscoveryRealFs, A2_Mode000DirectoryIsReported) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root reads mode-000 directories (the same path is covered through MemEnv)";
  }
  std::string p = Projects(home_ + "/.claude");
  WriteFile(p + "/a/s.jsonl", "{}\n");
  WriteFile(p + "/locked/t.jsonl", "{}\n");
  ASSERT_EQ(::chmod((p + "/locked").c_str(), 0), 0);
  DiscoveryResult r = FindTranscripts({p});
  ::chmod((p + "/locked").c_str(), 0755);
  EXPECT_EQ(Paths(r.files), (std::vector<std::string>{p + "/a/s.jsonl"}));
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(Contains(r.problems[0], p + "/locked: opendir: Permission denied")) << r.problems[0];
}

// Makes `levels` nested directories of 200-character names below `base` with *at() calls (a
// path longer than PATH_MAX cannot be made or removed by name) and a transcript at the bottom.
void MakeDeepTree(const std::string& base, int levels) {
  int fd = ::open(base.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  const std::string name(200, 'd');
  for (int i = 0; i < levels; ++i) {
    ASSERT_EQ(::mkdirat(fd, name.c_str(), 0755), 0);
    int next = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY);
    ::close(fd);
    ASSERT_GE(next, 0);
    fd = next;
  }
  int file = ::openat(fd, "deep.jsonl", O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(file, 0);
  ::close(file);
  ::close(fd);
}

void RemoveTreeAt(int parent, const char* name) {
  int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (fd < 0) {
    ::unlinkat(parent, name, 0);
    return;
  }
  DIR* d = ::fdopendir(fd);
  std::vector<std::string> children;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") children.push_back(n);
  }
  for (const auto& c : children) RemoveTreeAt(::dirfd(d), c.c_str());
  ::closedir(d);
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

TEST_F(DiscoveryRealFs, A2_PathTooLongIsReportedAndTheWalkGoesOn) {
  std::string p = Projects(home_ + "/.claude");
  WriteFile(p + "/a/s.jsonl", "{}\n");
  MakeDirs(p + "/deep");
  MakeDeepTree(p + "/deep", 25);  // 25 x 201 bytes: past PATH_MAX (4096)
  WriteFile(p + "/z/t.jsonl", "{}\n");
  DiscoveryResult r = FindTranscripts({p});
  int fd = ::open((p + "/deep").c_str(), O_RDONLY | O_DIRECTORY);
  RemoveTreeAt(fd, std::string(200, 'd').c_str());
  ::close(fd);
  EXPECT_EQ(Paths(r.files), (std::vector<std::string>{p + "/a/s.jsonl", p + "/z/t.jsonl"}));
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(Contains(r.problems[0], ": opendir: File name too long (not searched"))
      << r.problems[0];
}

// Defect 1 as found: thousands of session dirs while another process creates and removes empty
// dirs beside and inside them. Every run must find every transcript (a vanished directory may be
// reported, but must not end the walk).
TEST_F(DiscoveryRealFs, A2_DirectoriesCreatedAndRemovedDuringTheWalk) {
  std::string p = Projects(home_ + "/.claude");
  constexpr int kSessions = 3000;
  std::vector<std::string> want;
  for (int i = 0; i < kSessions; ++i) {
    const std::string dir = p + "/-Users-x-p" + std::to_string(i);
    MakeDirs(dir);
    want.push_back(dir + "/s.jsonl");
    int fd = ::open(want.back().c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  std::sort(want.begin(), want.end());
  std::atomic<bool> stop{false};
  std::latch churning(1);
  std::atomic<uint64_t> churned{0};
  std::thread churn([&] {
    // Batches of empty dirs, at the top (beside the sessions) and inside sessions: each lives
    // long enough to be listed by the walk and removed before the walk opens it.
    auto churn_dir = [&](uint64_t round, int k) {
      return k % 2 ? p + "/-churn-" + std::to_string(k)
                   : p + "/-Users-x-p" + std::to_string((round * 64 + k) % kSessions) + "/tmp";
    };
    for (uint64_t round = 0; !stop.load(); ++round) {
      for (int k = 0; k < 64; ++k) ::mkdir(churn_dir(round, k).c_str(), 0755);
      for (int k = 0; k < 64; ++k) ::rmdir(churn_dir(round, k).c_str());
      churned.fetch_add(64);
      if (round == 0) churning.count_down();
    }
  });
  churning.wait();  // the churn is under way before the first walk
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int runs = 0;
  for (; runs < 4 && std::chrono::steady_clock::now() < deadline; ++runs) {
    DiscoveryResult r = FindTranscripts({p});
    ASSERT_EQ(r.files.size(), want.size()) << "run " << runs;
    EXPECT_EQ(Paths(r.files), want) << "run " << runs;
    for (const std::string& problem : r.problems) {
      EXPECT_TRUE(Contains(problem, "-churn-") || Contains(problem, "/tmp: opendir"))
          << problem;  // only the churned dirs may vanish
    }
  }
  stop = true;
  churn.join();
  EXPECT_GE(runs, 1);
  EXPECT_GE(churned.load(), 64u);
}

}  // namespace
}  // namespace ccmon
