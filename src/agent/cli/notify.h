// Desktop notifications when pushing keeps failing: after kNotifyAfterFailures consecutive failed
// pushes, one notification (notify-send on Linux, osascript on macOS, only when the program is
// found in PATH), then at most one per kNotifyMinInterval while failures go on (a failure run
// that starts within the interval after a notification waits for the interval to pass).
//
// The clock and the command runner are injected (tests use FakeClock and a fake runner). The
// notification text comes from the agent's status; control characters are replaced and its
// length is bounded, and the runner gets an argument vector (no shell), so nothing in a
// receiver's error message can become a command.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/cli/status_file.h"
#include "base/clock.h"
#include "base/env.h"
#include "base/status.h"

namespace ccmon {

inline constexpr int64_t kNotifyAfterFailures = 3;
inline constexpr std::chrono::minutes kNotifyMinInterval{5};

// Runs external programs. Implementations are thread-safe.
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // True when `program` is an executable file in one of $PATH's directories.
  virtual bool InPath(const std::string& program) = 0;
  // Starts argv[0] (searched in PATH) with the arguments, standard input and output on
  // /dev/null, and does not wait for it to finish (a notifier that hangs must not stall the
  // agent); errors are about starting it.
  virtual Status Start(const std::vector<std::string>& argv) = 0;
};

// The real runner: posix_spawnp, children reaped by a detached thread each. `env` (PATH) is
// borrowed.
class PosixCommandRunner : public CommandRunner {
 public:
  explicit PosixCommandRunner(Env* env) : env_(env) {}
  bool InPath(const std::string& program) override;
  Status Start(const std::vector<std::string>& argv) override;

 private:
  Env* env_;
};

// The argv that shows one notification on `os` (uname's sysname: "Linux", "Darwin"), or
// nullopt where ccmon knows no way. `title` and `body` are shown as text.
std::optional<std::vector<std::string>> NotificationCommand(const std::string& os,
                                                            const std::string& title,
                                                            const std::string& body);

// Decides when to notify. Thread-safe; the clock and runner are borrowed.
class PushFailureNotifier {
 public:
  PushFailureNotifier(Clock* clock, CommandRunner* runner, std::string os);

  // Looks at a new status; notifies when the rule above says so. Returns true when it started
  // a notification command.
  bool Observe(const AgentStatus& status);
  int notifications() const;

 private:
  Clock* clock_;
  CommandRunner* runner_;
  std::string os_;
  mutable std::mutex mu_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  int sent_ = 0;
};

}  // namespace ccmon
