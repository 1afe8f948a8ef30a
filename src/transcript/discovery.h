// Discovery of Claude Code transcript files (docs/accounting.md, "Where transcripts are").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
  static DiscoveryEnv FromProcess();
};

// The `projects/` directories to scan, existing ones only, without duplicates.
// CLAUDE_CONFIG_DIR entries may name a config dir or its projects/ dir; "~" is expanded.
// Without it: $XDG_CONFIG_HOME/claude (default ~/.config/claude) and ~/.claude.
std::vector<std::string> ProjectDirs(const DiscoveryEnv& env);
// Same, for explicit --config-dir values.
std::vector<std::string> ProjectDirsFrom(const std::vector<std::string>& dirs, const std::string& home);

// Every regular *.jsonl file below the given dirs, recursively (subagents/ included),
// sorted by path. Unreadable subdirectories are reported in *warnings and skipped.
std::vector<TranscriptFile> ListTranscripts(const std::vector<std::string>& project_dirs,
                                            std::vector<std::string>* warnings);

}  // namespace ccmon
