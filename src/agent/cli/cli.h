// ccmon-agent's command line: every subcommand, as a function of the arguments and injected
// seams, so that commands are unit-tested in-process and main.cc only gathers the seams.
//
//   ccmon-agent setup --url URL [--bearer-token-file F | --key KEY] [--device NAME] [setting…]
//   ccmon-agent start [--foreground] [setting…]      ccmon-agent stop | restart [setting…]
//   ccmon-agent status [--json]                      ccmon-agent logs [--follow] [--errors]
//   ccmon-agent test [setting…]                      ccmon-agent reset [--config[=FILE]]
//   ccmon-agent install-service | uninstall
// Every command also takes --config FILE (the config file; reset: --config[=FILE] also removes
// it) and --state-dir DIR. Settings: agent/cli/config.h. A flag given to a command it does not
// apply to is a usage error.
//
// Exit status: 0 ok; 1 failure (said on standard error); 2 usage error (flags, environment or
// config file); 3 the agent is not running (status, stop).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "agent/cli/notify.h"
#include "agent/cli/run_hooks.h"
#include "base/clock.h"
#include "base/env.h"
#include "http/transport.h"
#include "tools/common/stop_signals.h"

namespace ccmon {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotRunning = 3;

// How long `start` waits for the background agent to say it is up, and `stop` for it to end.
inline constexpr std::chrono::milliseconds kStartTimeout{10000};
inline constexpr std::chrono::milliseconds kStopTimeout{5000};

// The marker file `start` puts in a state directory: `reset` removes only directories that
// hold it (or are empty), so `--state-dir ~` cannot make it delete a home directory.
inline constexpr const char kStateMarkerFileName[] = "CCMON_AGENT_STATE";

// The seams. Borrowed pointers must outlive the call; null ones get the real thing where one
// exists.
struct CliSeams {
  AgentRunner run_agent;               // the engine (RunAgent); required for start --foreground
  Clock* clock = nullptr;              // Clock::Real()
  StopSignals* signals = nullptr;      // null: nothing stops a foreground run or logs --follow
  CommandRunner* commands = nullptr;   // notifications; null: a PosixCommandRunner
  HttpTransport* transport = nullptr;  // `test`; null: the real client with the TLS settings
  std::string self_exe;                // absolute path of ccmon-agent (start, install-service)
  std::string hostname;                // the default device
  std::string os;                      // uname sysname: "Linux", "Darwin"
  int ready_fd = -1;                   // start --foreground in the background: report here
  // Standard error is a terminal the user reads (foreground runs log there too).
  bool log_to_err = true;
};

// Runs one command line (the arguments after the program name); returns the exit status.
int RunAgentCli(const std::vector<std::string>& args, Env* env, std::ostream& out,
                std::ostream& err, const CliSeams& seams);

// The version printed by status and `--version`.
const char* AgentVersion();

}  // namespace ccmon
