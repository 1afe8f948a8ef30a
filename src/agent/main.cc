// ccmon-agent: gathers the real seams (signals, host facts, the engine) and runs the command
// line (agent/cli/cli.h). Everything else is in the agent_cli library and the engine.
#include <iostream>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/cli/cli.h"
#include "agent/cli/daemon.h"
#include "tools/common/output.h"
#include "tools/common/stop_signals.h"

int main(int argc, char** argv) {
  // Before any thread starts: every thread inherits the blocked signals.
  static ccmon::StopSignals signals;
  signals.Install();
  ccmon::CliSeams seams;
  seams.run_agent = &ccmon::RunAgent;
  seams.signals = &signals;
  seams.self_exe = ccmon::SelfExePath();
  seams.hostname = ccmon::HostName();
  seams.os = ccmon::OsName();
  seams.ready_fd = ccmon::TakeReadyFd();
  // A background agent's standard error is /dev/null: its log file is where it speaks.
  seams.log_to_err = seams.ready_fd < 0;
  const int code = ccmon::RunAgentCli(std::vector<std::string>(argv + 1, argv + argc),
                                      ccmon::Env::Default(), std::cout, std::cerr, seams);
  std::cout.flush();
  std::cerr.flush();
  signals.ReraiseIfCaught();
  return code;
}
