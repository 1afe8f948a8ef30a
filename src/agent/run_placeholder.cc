// PLACEHOLDER for the counting engine: the engine's author replaces this file (and removes it
// from src/agent/CMakeLists.txt). It does what the CLI needs to be tested end to end: logs that
// no engine is built, publishes an all-zero status, and waits for the stop request.
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "agent/agent.h"

namespace ccmon {

int RunAgent(const AgentConfig& config, std::stop_token stop, const AgentRunHooks& hooks) {
  hooks.log->Warn("engine not built yet: nothing is read or sent",
                  {{"url", config.url}, {"device", config.device}});
  AgentStatus status;
  status.last_error = "engine not built yet";
  hooks.publish_status(status);
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, stop, [] { return false; });  // until stop is requested
  hooks.log->Info("engine placeholder stopping");
  return 0;
}

}  // namespace ccmon
