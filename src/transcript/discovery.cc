#include "transcript/discovery.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <utility>

namespace ccmon {
namespace fs = std::filesystem;
namespace {

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string ExpandHome(std::string p, const std::string& home) {
  if (!p.empty() && p[0] == '~' && (p.size() == 1 || p[1] == '/')) p = home + p.substr(1);
  return p;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool IsDir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

}  // namespace

DiscoveryEnv DiscoveryEnv::FromProcess() {
  return {Getenv("HOME"), Getenv("XDG_CONFIG_HOME"), Getenv("CLAUDE_CONFIG_DIR")};
}

std::vector<std::string> ProjectDirsFrom(const std::vector<std::string>& dirs,
                                         const std::string& home) {
  std::vector<std::string> out;
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (std::string d : dirs) {
    d = ExpandHome(Trim(d), home);
    if (d.empty()) continue;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    std::string projects;
    if (fs::path(d).filename() == "projects" && IsDir(d)) {
      projects = d;
    } else if (IsDir(d + "/projects")) {
      projects = d + "/projects";
    } else {
      continue;
    }
    struct stat st;
    if (::stat(projects.c_str(), &st) != 0) continue;
    if (!seen.insert({uint64_t(st.st_dev), uint64_t(st.st_ino)}).second) continue;
    out.push_back(projects);
  }
  return out;
}

std::vector<std::string> ProjectDirs(const DiscoveryEnv& env) {
  std::vector<std::string> dirs;
  if (!Trim(env.claude_config_dir).empty()) {
    size_t start = 0;
    const std::string& s = env.claude_config_dir;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      if (comma == std::string::npos) comma = s.size();
      dirs.push_back(s.substr(start, comma - start));
      start = comma + 1;
    }
  } else {
    std::string xdg = env.xdg_config_home.empty() ? env.home + "/.config" : env.xdg_config_home;
    dirs.push_back(xdg + "/claude");
    dirs.push_back(env.home + "/.claude");
  }
  return ProjectDirsFrom(dirs, env.home);
}

std::vector<TranscriptFile> ListTranscripts(const std::vector<std::string>& project_dirs,
                                            std::vector<std::string>* warnings) {
  std::vector<TranscriptFile> out;
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (const std::string& root : project_dirs) {
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    if (ec) {
      if (warnings) warnings->push_back(root + ": " + ec.message());
      continue;
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) {
        if (warnings) warnings->push_back(root + ": " + ec.message());
        break;
      }
      const fs::directory_entry& e = *it;
      const fs::path& p = e.path();
      if (p.extension() != ".jsonl") continue;
      struct stat st;
      if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (!seen.insert({uint64_t(st.st_dev), uint64_t(st.st_ino)}).second) continue;
      TranscriptFile f;
      f.path = p.string();
      f.size = uint64_t(st.st_size);
      f.mtime_ms = int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
      f.device = uint64_t(st.st_dev);
      f.inode = uint64_t(st.st_ino);
      out.push_back(std::move(f));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const TranscriptFile& a, const TranscriptFile& b) { return a.path < b.path; });
  return out;
}

}  // namespace ccmon
