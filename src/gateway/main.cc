// ccmon-gateway: installs the stop signals and runs the command line (gateway/cli.h).
#include <iostream>
#include <string>
#include <vector>

#include "gateway/cli.h"
#include "tools/common/stop_signals.h"

int main(int argc, char** argv) {
  // Before any thread starts: every thread inherits the blocked signals.
  static ccmon::StopSignals signals;
  signals.Install();
  const int code = ccmon::gateway::RunGatewayCli(std::vector<std::string>(argv + 1, argv + argc),
                                                 std::cout, std::cerr, &signals);
  std::cout.flush();
  std::cerr.flush();
  // A serve stopped by a signal ends by it (exit status 128 + signal), as the tools do.
  signals.ReraiseIfCaught();
  return code;
}
