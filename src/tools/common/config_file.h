// The `key = value` config-file format the ccmon daemons share (ccmon-agent's agent.conf,
// ccmon-gateway's --config): one parser, so that both read files the same way.
//
// The format: UTF-8 text, one `key = value` per line; blank lines and lines starting with '#'
// are ignored; key and value are trimmed of spaces and tabs; the value is the rest of the line
// (no quoting, so a value may hold '=' and '#'). A line that is not valid UTF-8, holds a control
// character, or has no '=' is an error; so is a key the caller does not know, and a second line
// for a key that is not repeatable. Errors name the file and line ("PATH:LINE: …") and the key;
// they never echo a value (it may be a secret); a line without '=' is quoted, its first 60 bytes
// made terminal-safe.
//
// Pure (no I/O): the caller reads the file. Thread-compatible.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ccmon {

enum class ConfigKeyKind { kUnknown, kSingle, kRepeatable };

struct ConfigFileEntry {
  std::string key;
  std::string value;
  std::string origin;  // "PATH:LINE", for messages
};

// Parses `text` (the format above); `path` is used in messages only. `kind_of` says what each
// key is. On error *out is untouched.
Status ParseConfigFileEntries(std::string_view text, const std::string& path,
                              const std::function<ConfigKeyKind(std::string_view key)>& kind_of,
                              std::vector<ConfigFileEntry>* out);

// A file or directory setting's value made absolute, as both daemons read them: "~" and "~/…"
// from `home` (when not empty), another relative path against `base_dir` (absolute: the config
// file's directory, or the directory `setup` runs in); an absolute or empty value as it is.
std::string AbsoluteSettingPath(const std::string& value, const std::string& base_dir,
                                const std::string& home);

}  // namespace ccmon
