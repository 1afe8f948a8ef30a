// Graceful stop on SIGINT, SIGTERM and SIGHUP for the tools.
//
// By default a signal ends a tool at once, as if it had no handler: while it scans transcripts or
// prints to standard output nothing is left half-done by that. Some steps must not be cut short:
// an output file being written (its PATH.tmp must be removed, the old file kept) and a
// remote-write backfill (the user must learn how many samples were stored). Such a step runs
// inside a Scope: the first signal then only requests a stop on the scope's token; the step
// ends at its next check, cleans up and says what happened, and the tool, back in main, ends
// itself by that signal (ReraiseIfCaught), so that its parent sees it was interrupted (a shell
// script stops; exit status 128 + signal). A second signal, or one outside every scope, ends the
// process at once.
//
// Install() (real signals) is for main() only; without it, Deliver() stands in for a signal, so
// that the rules are unit-tested without signals. Thread-safe.
#pragma once

#include <mutex>
#include <stop_token>

namespace ccmon {

class StopSignals {
 public:
  StopSignals() = default;
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in every thread it starts
  // later) and starts a watcher thread that takes them with sigwait() and calls Deliver(); when
  // Deliver() says so, it ends the process by the signal. Call once, first thing in main(),
  // before any other thread exists. The object must live until the process ends.
  void Install();

  // While a Scope lives, the first signal requests a stop on token() instead of ending the
  // process. Scopes may nest; each has the one token of this object.
  class Scope {
   public:
    explicit Scope(StopSignals* owner);  // owner may be null: a scope that is never stopped
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    std::stop_token token() const;

   private:
    StopSignals* owner_;
  };

  // What the signal `signo` does now: true when it requested a stop (inside a scope, the first
  // signal), false when the process must end by it.
  bool Deliver(int signo);
  // The signal that requested a stop; 0 if none did.
  int caught() const;
  // Ends the process by the caught signal (default action, then raise); returns when none was
  // caught or when Install() was not called (tests).
  void ReraiseIfCaught();

 private:
  mutable std::mutex mu_;
  std::stop_source source_;
  int scopes_ = 0;
  int caught_ = 0;
  bool installed_ = false;
};

// For the long-running servers (`ccmon-gateway serve`, `ccmon-agent start --foreground`): a
// write to a pipe whose reader has gone (standard error piped into `tee` or a log collector that
// ended or restarted) fails with EPIPE instead of ending the process by SIGPIPE, so that they
// keep serving, and stop cleanly, without their log stream. The one-shot commands keep the
// default (`ccmon-agent status | head` ends quietly). Process-wide; call it from the command's
// own thread before it starts serving.
void IgnoreBrokenPipes();

}  // namespace ccmon
