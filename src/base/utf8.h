// UTF-8 validation (strict: no overlongs, surrogates or code points above U+10FFFF), and text
// made safe for a terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ccmon {

bool IsValidUtf8(std::string_view s);

// `s` as it may be printed to a terminal in a message or a table: C0 control characters
// (U+0000-U+001F; \n, \r and \t as such), DEL, C1 controls (U+0080-U+009F, CSI among them) and
// bytes that are not part of valid UTF-8 are written as \xNN escapes; everything else (printable
// UTF-8, backslashes) is unchanged. Names that come from transcripts, price files or file names
// (a model, a project, a path) cannot then move the cursor, retitle the window or hide text.
std::string TerminalSafe(std::string_view s);

// The longest prefix of `s` of at most `max_bytes` bytes that does not end inside a UTF-8
// sequence (for cutting a long name in a table).
std::string_view Utf8Prefix(std::string_view s, size_t max_bytes);

}  // namespace ccmon
