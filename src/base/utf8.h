// UTF-8 validation (strict: no overlongs, surrogates or code points above U+10FFFF).
#pragma once

#include <string_view>

namespace ccmon {

bool IsValidUtf8(std::string_view s);

}  // namespace ccmon
