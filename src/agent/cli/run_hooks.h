// What the CLI hands the counting engine (src/agent/agent.h, RunAgent) when `start --foreground`
// runs it, and the engine's entry point as the CLI calls it (injected, so that the CLI library
// does not depend on the engine and its tests run a fake engine).
#pragma once

#include <functional>
#include <stop_token>

#include "agent/cli/config.h"
#include "agent/cli/log.h"
#include "agent/cli/status_file.h"

namespace ccmon {

struct AgentRunHooks {
  // The agent's log (agent.log, and standard error in --foreground). Never null; outlives the
  // run; thread-safe.
  Logger* log = nullptr;
  // Publishes the engine's status: call it every second or on change, from any thread (the
  // CLI serialises calls). The CLI fills in pid, version, started_unix and updated_unix, writes
  // the status file (`ccmon-agent status` reads it) and raises the desktop notification after
  // consecutive push failures (agent/cli/notify.h). Never null.
  std::function<void(const AgentStatus&)> publish_status;
  // Says the agent is up: call it once, after the state is open and the --listen address bound
  // (before waiting for anything outside the process, such as a resume from the gateway). Until
  // then a background `start` waits, and an engine that returns without calling it is reported
  // there as not started, with the first error it logged. Never null; any thread.
  std::function<void()> ready;
};

// The engine's entry point: runs until `stop` is requested (SIGTERM, SIGINT) or it fails, and
// returns the process exit status (0: stopped as asked; 1: failed, after logging why). After a
// stop request it must return within kAgentStopGrace, its state consistent; the CLI ends the
// process itself 5 s after the signal otherwise.
using AgentRunner =
    std::function<int(const AgentConfig& config, std::stop_token stop, const AgentRunHooks& hooks)>;

inline constexpr std::chrono::milliseconds kAgentStopGrace{4000};

}  // namespace ccmon
