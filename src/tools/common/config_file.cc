#include "tools/common/config_file.h"

#include <algorithm>
#include <set>

#include "base/utf8.h"

namespace ccmon {
namespace {

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))  // CRLF files
    s.remove_suffix(1);
  return s;
}

}  // namespace

Status ParseConfigFileEntries(std::string_view text, const std::string& path,
                              const std::function<ConfigKeyKind(std::string_view key)>& kind_of,
                              std::vector<ConfigFileEntry>* out) {
  std::vector<ConfigFileEntry> entries;
  std::set<std::string, std::less<>> seen;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const std::string where = path + ":" + std::to_string(line_no);
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    if (!IsValidUtf8(line) || HasControl(line))
      return Status::InvalidArgument(where + ": control characters or invalid UTF-8");
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return Status::InvalidArgument(where + ": expected 'key = value', got '" +
                                     TerminalSafe(Utf8Prefix(line, 60)) + "'");
    const std::string key(Trim(line.substr(0, eq)));
    const ConfigKeyKind kind = kind_of(key);
    if (kind == ConfigKeyKind::kUnknown)
      return Status::InvalidArgument(where + ": unknown key '" + TerminalSafe(key) + "'");
    if (kind == ConfigKeyKind::kSingle && !seen.insert(key).second)
      return Status::InvalidArgument(where + ": key '" + key + "' given twice");
    entries.push_back({key, std::string(Trim(line.substr(eq + 1))), where});
  }
  *out = std::move(entries);
  return Status::Ok();
}

std::string AbsoluteSettingPath(const std::string& value, const std::string& base_dir,
                                const std::string& home) {
  if (value.empty() || value.front() == '/') return value;
  if (!home.empty() && (value == "~" || value.compare(0, 2, "~/") == 0))
    return home + value.substr(1);
  return (base_dir == "/" ? "" : base_dir) + "/" + value;
}

}  // namespace ccmon
