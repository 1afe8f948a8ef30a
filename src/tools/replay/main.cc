// ccmon-replay: parses the command line into a ReplayConfig (flags.h) and calls RunReplay().
#include <malloc.h>

#include <iostream>
#include <string>
#include <vector>

#include "tools/common/output.h"
#include "tools/common/stop_signals.h"
#include "tools/replay/flags.h"
#include "tools/replay/replay.h"

int main(int argc, char** argv) {
  // Big line buffers come and go while reading: keep them mmap'ed so that freeing one returns it
  // to the system (glibc would otherwise raise its threshold and keep them on the heap).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  // Before any thread starts: every thread inherits the blocked signals.
  static ccmon::StopSignals signals;
  signals.Install();
  const ccmon::ReplayFlags flags =
      ccmon::ParseReplayFlags(std::vector<std::string>(argv + 1, argv + argc));
  switch (flags.action) {
    case ccmon::ReplayFlags::Action::kUsageError:
      std::cerr << "ccmon-replay: " << flags.text << "\n";
      return 2;
    case ccmon::ReplayFlags::Action::kHelp:
      std::cout << flags.text;
      if (ccmon::Status s = ccmon::FlushOutput(std::cout, "standard output"); !s.ok()) {
        std::cerr << "ccmon-replay: " << s.message() << "\n";
        return 1;
      }
      return 0;
    case ccmon::ReplayFlags::Action::kRun:
      break;
  }
  const int code =
      ccmon::RunReplay(flags.config, std::cout, std::cerr, ccmon::Env::Default(), &signals);
  std::cout.flush();
  std::cerr.flush();
  signals.ReraiseIfCaught();  // interrupted: end by the signal, after cleaning up and reporting
  return code;
}
