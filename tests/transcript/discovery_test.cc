// Discovery of transcript files (docs/accounting.md A1, A2). Real directories in a temp dir; the
// environment is passed as a DiscoveryEnv, the process environment is never changed.
#include "transcript/discovery.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "testing/test_util.h"

namespace ccmon {
namespace {

namespace fs = std::filesystem;
using testing_util::MakeDirs;
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
  DiscoveryEnv Env(const std::string& claude_config_dir = "", const std::string& xdg = "") {
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

TEST_F(DiscoveryTest, A1_DefaultsAreXdgClaudeAndDotClaude) {
  EXPECT_TRUE(ProjectDirs(Env()).empty());  // nothing exists yet
  std::string dot = Projects(home_ + "/.claude");
  EXPECT_EQ(ProjectDirs(Env()), (std::vector<std::string>{dot}));
  std::string xdg_default = Projects(home_ + "/.config/claude");
  EXPECT_EQ(ProjectDirs(Env()), (std::vector<std::string>{xdg_default, dot}));
  // $XDG_CONFIG_HOME replaces ~/.config.
  std::string xdg = Projects(tmp_ / "xdg/claude");
  EXPECT_EQ(ProjectDirs(Env("", tmp_ / "xdg")), (std::vector<std::string>{xdg, dot}));
  // Blank CLAUDE_CONFIG_DIR counts as unset.
  EXPECT_EQ(ProjectDirs(Env("  \t ")), (std::vector<std::string>{xdg_default, dot}));
}

TEST_F(DiscoveryTest, A1_ClaudeConfigDirListWithSpacesTildeAndProjectsEntries) {
  Projects(home_ + "/.claude");  // defaults exist but are not used when CLAUDE_CONFIG_DIR is set
  std::string cfg1 = Projects(home_ + "/cfg1");
  std::string cfg2 = Projects(tmp_ / "cfg2");
  std::string home_projects = Projects(home_);
  // cfg2 is named by its projects/ dir; it is named again later through its config dir.
  std::string list = " ~/cfg1 ,\t" + cfg2 + ",," + (tmp_ / "missing") + " , ~ ," + (tmp_ / "cfg2") + "/";
  EXPECT_EQ(ProjectDirs(Env(list)), (std::vector<std::string>{cfg1, cfg2, home_projects}));
  // A single entry, with trailing slashes: the config dir, or its projects/ dir.
  EXPECT_EQ(ProjectDirs(Env((tmp_ / "cfg2") + "//")), (std::vector<std::string>{cfg2}));
  EXPECT_EQ(ProjectDirs(Env(cfg2 + "/")), (std::vector<std::string>{cfg2}));
  // "~user" is not expanded.
  EXPECT_TRUE(ProjectDirs(Env("~cfg1")).empty());
}

TEST_F(DiscoveryTest, A1_EntriesWithoutProjectsAreIgnored) {
  MakeDirs(tmp_ / "no-projects");
  WriteFile(tmp_ / "a-file", "x");
  WriteFile(tmp_ / "file-cfg/projects", "not a dir");
  std::string ok = Projects(tmp_ / "ok");
  std::string list = (tmp_ / "no-projects") + "," + (tmp_ / "a-file") + "," + (tmp_ / "file-cfg") + "," +
                     (tmp_ / "nowhere") + "," + ok;
  EXPECT_EQ(ProjectDirs(Env(list)), (std::vector<std::string>{ok}));
}

TEST_F(DiscoveryTest, A1_SameProjectsDirReachedTwiceIsListedOnce) {
  std::string real = Projects(home_ + "/.claude");
  ASSERT_EQ(::symlink((home_ + "/.claude").c_str(), (tmp_ / "alias").c_str()), 0);
  ASSERT_EQ(::symlink(real.c_str(), (tmp_ / "projects").c_str()), 0);
  std::string list = home_ + "/.claude," + (tmp_ / "alias") + "," + (tmp_ / "projects") + ",~/.claude/";
  EXPECT_EQ(ProjectDirs(Env(list)), (std::vector<std::string>{real}));
  // XDG pointing at the same place as ~/.claude through a symlink.
  MakeDirs(tmp_ / "xdg");
  ASSERT_EQ(::symlink((home_ + "/.claude").c_str(), (tmp_ / "xdg/claude").c_str()), 0);
  EXPECT_EQ(ProjectDirs(Env("", tmp_ / "xdg")), (std::vector<std::string>{tmp_ / "xdg/claude/projects"}));
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
  ASSERT_EQ(::symlink((p + "/nowhere.jsonl").c_str(), (p + "/broken.jsonl").c_str()), 0);
  std::vector<std::string> warnings;
  auto files = ListTranscripts({p}, &warnings);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(Paths(files), (std::vector<std::string>{
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
  ASSERT_EQ(::symlink((p + "/-Users-x-app/sess-1.jsonl").c_str(), (p + "/-Users-x-web/link.jsonl").c_str()), 0);
  ASSERT_EQ(::link((p + "/-Users-x-app/sess-1.jsonl").c_str(), (p + "/-Users-x-web/hard.jsonl").c_str()), 0);
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
  auto files = ListTranscripts(ProjectDirs(Env("~/.claude, " + (tmp_ / "work-claude"))), nullptr);
  EXPECT_EQ(Paths(files), (std::vector<std::string>{dot + "/-home-app/s1.jsonl", cfg + "/-home-api/s2.jsonl",
                                                    cfg + "/-home-api/s2/subagents/agent-1.jsonl"}));
}

}  // namespace
}  // namespace ccmon
