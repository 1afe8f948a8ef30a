// Discovery of Claude Code transcript files (docs/accounting.md, "Where transcripts are").
//
// Every file-system access and environment lookup goes through an Env (default: the POSIX one),
// so that tests can serve trees from memory and inject failures. Thread-compatible: nothing is
// shared between calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"

namespace ccmon {

struct TranscriptFile {
  std::string path;
  uint64_t size = 0;
  int64_t mtime_ms = 0;
  uint64_t device = 0, inode = 0;  // identity: the same file reached twice is listed once
};

struct DiscoveryEnv {
  std::string home;               // $HOME
  std::string xdg_config_home;    // $XDG_CONFIG_HOME ("" -> $HOME/.config)
  std::string claude_config_dir;  // $CLAUDE_CONFIG_DIR (comma-separated)
  // Reads the three variables through env->GetEnvVar (unset is "").
  static DiscoveryEnv FromEnv(Env* env);
  static DiscoveryEnv FromProcess() { return FromEnv(Env::Default()); }
};

// The `projects/` directories to scan, existing ones only, without duplicates.
// CLAUDE_CONFIG_DIR entries may name a config dir or its projects/ dir; "~" is expanded.
// Without it: $XDG_CONFIG_HOME/claude (default ~/.config/claude) and ~/.claude.
// An entry whose projects/ dir cannot be examined for another reason than its absence (e.g. a
// config dir without search permission) is skipped and described in *problems, if given.
std::vector<std::string> ProjectDirs(const DiscoveryEnv& denv, Env* env = Env::Default(),
                                     std::vector<std::string>* problems = nullptr);
// Same, for explicit --config-dir values.
std::vector<std::string> ProjectDirsFrom(const std::vector<std::string>& dirs,
                                         const std::string& home, Env* env = Env::Default(),
                                         std::vector<std::string>* problems = nullptr);

// The config dirs ProjectDirs looks in: the CLAUDE_CONFIG_DIR entries, or
// $XDG_CONFIG_HOME/claude (default ~/.config/claude) and ~/.claude.
std::vector<std::string> ConfigDirs(const DiscoveryEnv& denv);
// The projects/ directories a watcher follows for `config_dirs` (explicit --config-dir values, or
// ConfigDirs): the existing ones, as ProjectDirsFrom finds them, then, for each entry with none
// yet, the projects/ dir it would have (the entry itself when it is named `projects`), so that the
// watcher sees it appear. "~" is expanded as in ProjectDirsFrom.
std::vector<std::string> WatchedProjectDirs(const std::vector<std::string>& config_dirs,
                                            const std::string& home, Env* env = Env::Default(),
                                            std::vector<std::string>* problems = nullptr);

struct DiscoveryResult {
  // Every regular *.jsonl file found, sorted by path.
  std::vector<TranscriptFile> files;
  // What could not be searched or examined (an unreadable or vanished directory, a directory
  // that could not be opened for lack of file descriptors, a path too long, a file that could not
  // be stat'ed), one printable line each, naming the path and the reason, sorted. The walk goes on
  // past each of them; when there is any, `files` may lack transcripts that exist.
  std::vector<std::string> problems;
  bool complete() const { return problems.empty(); }
};

// Walks the given dirs recursively (subagents/ included; symlinked directories are not followed,
// symlinked files are), listing every regular *.jsonl file once (by device and inode).
DiscoveryResult FindTranscripts(const std::vector<std::string>& project_dirs,
                                Env* env = Env::Default());

// FindTranscripts, with the problems appended to *warnings (if given).
std::vector<TranscriptFile> ListTranscripts(const std::vector<std::string>& project_dirs,
                                            std::vector<std::string>* warnings,
                                            Env* env = Env::Default());

}  // namespace ccmon
