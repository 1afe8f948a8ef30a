#include "tools/common/flags.h"

namespace ccmon {

Status ParseUnsignedFlag(std::string_view flag, std::string_view text, uint64_t min, uint64_t max,
                         uint64_t* out, std::string_view unit) {
  auto fail = [&] {
    std::string msg = "--" + std::string(flag) + " wants an integer from " + std::to_string(min) +
                      " to " + std::to_string(max);
    if (!unit.empty()) msg += " " + std::string(unit);
    return Status::InvalidArgument(msg + ", got '" + std::string(text) + "'");
  };
  if (text.empty()) return fail();
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fail();
    const uint64_t digit = uint64_t(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return fail();  // would overflow
    v = v * 10 + digit;
  }
  if (v < min || v > max) return fail();
  *out = v;
  return Status::Ok();
}

Status CheckFlagsApply(std::string_view command, const std::vector<std::string>& given,
                       const std::vector<FlagScope>& scopes) {
  for (const std::string& flag : given) {
    for (const FlagScope& scope : scopes) {
      if (scope.flag != flag || scope.commands.empty()) continue;
      bool applies = false;
      std::string owners;
      for (const std::string& c : scope.commands) {
        applies = applies || c == command;
        owners += (owners.empty() ? "" : ", ") + c;
      }
      if (!applies) {
        return Status::InvalidArgument("--" + flag + " does not apply to " + std::string(command) +
                                       " (only to " + owners + ")");
      }
    }
  }
  return Status::Ok();
}

}  // namespace ccmon
