#include "transcript/discovery.h"

#include <algorithm>
#include <set>
#include <utility>

namespace ccmon {
namespace {

using Identity = std::pair<uint64_t, uint64_t>;  // device, inode

std::string ExpandHome(std::string p, const std::string& home) {
  if (!p.empty() && p[0] == '~' && (p.size() == 1 || p[1] == '/')) p = home + p.substr(1);
  return p;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string StripTrailingSlashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string BaseName(const std::string& p) {
  size_t cut = p.find_last_of('/');
  return cut == std::string::npos ? p : p.substr(cut + 1);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Is `path` a directory? Absent (kNotFound) is a plain no; any other failure is a problem.
bool IsDir(Env* env, const std::string& path, FileInfo* info, std::vector<std::string>* problems) {
  Status s = env->Stat(path, info);
  if (s.ok()) return info->type == FileType::kDirectory;
  if (s.code() != Status::Code::kNotFound && problems) {
    problems->push_back(s.message() + " (skipped)");
  }
  return false;
}

}  // namespace

DiscoveryEnv DiscoveryEnv::FromEnv(Env* env) {
  return {env->GetEnvVar("HOME").value_or(""), env->GetEnvVar("XDG_CONFIG_HOME").value_or(""),
          env->GetEnvVar("CLAUDE_CONFIG_DIR").value_or("")};
}

std::vector<std::string> ProjectDirsFrom(const std::vector<std::string>& dirs,
                                         const std::string& home, Env* env,
                                         std::vector<std::string>* problems) {
  std::vector<std::string> out;
  std::set<Identity> seen;
  for (std::string d : dirs) {
    d = StripTrailingSlashes(ExpandHome(Trim(d), home));
    if (d.empty()) continue;
    FileInfo info;
    std::string projects;
    if (BaseName(d) == "projects" && IsDir(env, d, &info, problems)) {
      projects = d;
    } else if (IsDir(env, d + "/projects", &info, problems)) {
      projects = d + "/projects";
    } else {
      continue;
    }
    if (!seen.insert({info.device, info.inode}).second) continue;
    out.push_back(projects);
  }
  return out;
}

std::vector<std::string> ConfigDirs(const DiscoveryEnv& denv) {
  std::vector<std::string> dirs;
  if (!Trim(denv.claude_config_dir).empty()) {
    size_t start = 0;
    const std::string& s = denv.claude_config_dir;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      if (comma == std::string::npos) comma = s.size();
      dirs.push_back(s.substr(start, comma - start));
      start = comma + 1;
    }
  } else {
    std::string xdg = denv.xdg_config_home.empty() ? denv.home + "/.config" : denv.xdg_config_home;
    dirs.push_back(xdg + "/claude");
    dirs.push_back(denv.home + "/.claude");
  }
  return dirs;
}

std::vector<std::string> ProjectDirs(const DiscoveryEnv& denv, Env* env,
                                     std::vector<std::string>* problems) {
  return ProjectDirsFrom(ConfigDirs(denv), denv.home, env, problems);
}

std::vector<std::string> WatchedProjectDirs(const std::vector<std::string>& config_dirs,
                                            const std::string& home, Env* env,
                                            std::vector<std::string>* problems) {
  std::vector<std::string> out = ProjectDirsFrom(config_dirs, home, env, problems);
  for (std::string d : config_dirs) {
    d = StripTrailingSlashes(ExpandHome(Trim(d), home));
    if (d.empty()) continue;
    FileInfo info;
    if ((BaseName(d) == "projects" && env->Stat(d, &info).ok()) ||
        env->Stat(d + "/projects", &info).ok()) {
      continue;  // exists: ProjectDirsFrom has it (or described why it could not use it)
    }
    std::string projects = BaseName(d) == "projects" ? d : d + "/projects";
    if (std::find(out.begin(), out.end(), projects) == out.end()) out.push_back(projects);
  }
  return out;
}

DiscoveryResult FindTranscripts(const std::vector<std::string>& project_dirs, Env* env) {
  DiscoveryResult result;
  std::set<Identity> seen;
  auto problem = [&](const Status& s, const char* consequence) {
    result.problems.push_back(s.message() + " (" + consequence + ")");
  };
  std::vector<std::string> todo;  // directories still to list (depth-first, no recursion)
  std::vector<DirEntry> entries;
  for (const std::string& root : project_dirs) {
    todo.push_back(StripTrailingSlashes(root));
    while (!todo.empty()) {
      const std::string dir = std::move(todo.back());
      todo.pop_back();
      // One failing directory (gone since it was listed, unreadable, out of descriptors, a path
      // too long) costs only what is below it: it is reported and the walk goes on.
      Status s = env->GetChildren(dir, &entries);
      if (!s.ok()) {
        problem(s, "not searched: transcripts below it are not counted");
        continue;
      }
      for (DirEntry& e : entries) {
        std::string path = dir == "/" ? "/" + e.name : dir + "/" + e.name;
        FileType type = e.type;
        if (type == FileType::kUnknown) {  // the file system does not say: ask
          FileInfo info;
          s = env->LinkStat(path, &info);
          if (!s.ok()) {
            // Gone since the directory was read: nothing to count.
            if (s.code() != Status::Code::kNotFound) problem(s, "skipped");
            continue;
          }
          type = info.type;
        }
        if (type == FileType::kDirectory) {  // never a symlink: those are not followed (A2)
          todo.push_back(std::move(path));
          continue;
        }
        // "*.jsonl": a name that is only ".jsonl" has no stem (as before: path::extension()).
        if (e.name.size() <= 6 || !EndsWith(e.name, ".jsonl")) continue;
        FileInfo info;
        s = env->Stat(path, &info);  // follows a symlinked file
        if (!s.ok()) {
          // A dangling symlink, or a file removed since the directory was read, holds nothing.
          if (s.code() != Status::Code::kNotFound) problem(s, "skipped");
          continue;
        }
        if (info.type != FileType::kRegular) continue;
        if (!seen.insert({info.device, info.inode}).second) continue;
        TranscriptFile f;
        f.path = std::move(path);
        f.size = info.size;
        f.mtime_ms = info.mtime_ms;
        f.device = info.device;
        f.inode = info.inode;
        result.files.push_back(std::move(f));
      }
    }
  }
  std::sort(result.files.begin(), result.files.end(),
            [](const TranscriptFile& a, const TranscriptFile& b) { return a.path < b.path; });
  std::sort(result.problems.begin(), result.problems.end());
  return result;
}

std::vector<TranscriptFile> ListTranscripts(const std::vector<std::string>& project_dirs,
                                            std::vector<std::string>* warnings, Env* env) {
  DiscoveryResult r = FindTranscripts(project_dirs, env);
  if (warnings) {
    for (std::string& p : r.problems) warnings->push_back(std::move(p));
  }
  return std::move(r.files);
}

}  // namespace ccmon
