// Command-line checks shared by the tools (ccmon-replay, ccmon-pricing).
//
// Numeric flags are parsed as text, strictly: decimal digits only (no sign, blank, base prefix or
// trailing text), no overflow, and a documented range per flag, so that "-1" or 2^64-1 is refused
// with a message naming the flag and its range instead of wrapping around.
//
// Flags belong to subcommands: a flag given to a subcommand it does not apply to is an error
// rather than silently ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ccmon {

// Parses `text` as an unsigned decimal integer in [min, max] into *out. On failure *out is
// untouched and the message reads "--FLAG wants an integer from MIN to MAX[ UNIT], got 'TEXT'".
Status ParseUnsignedFlag(std::string_view flag, std::string_view text, uint64_t min, uint64_t max,
                         uint64_t* out, std::string_view unit = "");

// Which subcommands a flag applies to.
struct FlagScope {
  std::string flag;                   // long name, without "--"
  std::vector<std::string> commands;  // empty: every subcommand
};

// Checks that each flag in `given` (long names, without "--") applies to `command`. Flags not in
// `scopes` apply everywhere. The message names the first offending flag, the subcommand and the
// subcommands the flag is for.
Status CheckFlagsApply(std::string_view command, const std::vector<std::string>& given,
                       const std::vector<FlagScope>& scopes);

}  // namespace ccmon
