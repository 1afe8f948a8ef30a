// ccmon-replay's command line -> ReplayConfig, as a function (so flag validation is unit-tested
// without spawning processes). main.cc prints what it returns and calls RunReplay.
#pragma once

#include <string>
#include <vector>

#include "tools/replay/replay.h"

namespace ccmon {

struct ReplayFlags {
  enum class Action {
    kRun,         // run `config`
    kHelp,        // print `text` on standard output, exit 0
    kUsageError,  // print "ccmon-replay: " + `text` on standard error, exit 2
  };
  Action action = Action::kRun;
  ReplayConfig config;
  std::string text;
};

// Parses the arguments after the program name. Every check that needs no file is made here:
// the subcommand, flags that do not apply to it, numeric ranges (strict: no sign, no overflow,
// no trailing text), enumerations, --step, and remote-write's --url/--header/--bearer-token-file
// (the token file is read here).
ReplayFlags ParseReplayFlags(const std::vector<std::string>& args);

}  // namespace ccmon
