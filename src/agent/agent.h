// The counting engine's entry point (issue 7 §1–§5): tails the transcripts, counts, keeps its
// state and outbox in the state directory, and pushes with remote-write until stopped.
//
// `ccmon-agent start --foreground` (agent/cli/cli.h) calls it after it has taken the state
// directory's pid lock, opened the log and written a first status, and while SIGTERM/SIGINT
// request `stop`. The hooks and the stop contract are in agent/cli/run_hooks.h:
//   - hooks.log: structured log lines (agent/cli/log.h), thread-safe;
//   - hooks.publish_status: the status `ccmon-agent status` shows, every second or on change;
//   - return within kAgentStopGrace (4 s) of a stop request, the state consistent; the CLI
//     exits 5 s after SIGTERM at the latest.
// The files the engine keeps must live inside config.state_dir (reset removes that directory);
// agent.pid, agent.log*, status.json and CCMON_AGENT_STATE there are the CLI's.
//
// The design: docs/agent-design.md (tailing, counting, the commit protocol, sending, resume).
#pragma once

#include <stop_token>

#include "agent/cli/config.h"
#include "agent/cli/run_hooks.h"

namespace ccmon {

// Matches AgentRunner. Returns the process exit status (0 after a requested stop).
int RunAgent(const AgentConfig& config, std::stop_token stop, const AgentRunHooks& hooks);

}  // namespace ccmon
