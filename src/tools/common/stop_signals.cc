#include "tools/common/stop_signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

namespace ccmon {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

sigset_t StopSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kSignals) sigaddset(&set, s);
  return set;
}

// Ends the process by `signo` as if it had never been handled.
[[noreturn]] void DieBy(int signo) {
  struct sigaction sa = {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  ::sigaction(signo, &sa, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  ::raise(signo);
  ::_exit(128 + signo);  // not reached: the default action of these signals ends the process
}

}  // namespace

StopSignals::Scope::Scope(StopSignals* owner) : owner_(owner) {
  if (owner_ == nullptr) return;
  std::lock_guard<std::mutex> lock(owner_->mu_);
  ++owner_->scopes_;
}

StopSignals::Scope::~Scope() {
  if (owner_ == nullptr) return;
  std::lock_guard<std::mutex> lock(owner_->mu_);
  --owner_->scopes_;
}

std::stop_token StopSignals::Scope::token() const {
  return owner_ == nullptr ? std::stop_token() : owner_->source_.get_token();
}

void StopSignals::Install() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (installed_) return;
    installed_ = true;
  }
  const sigset_t set = StopSet();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([this, set] {
    for (;;) {
      int signo = 0;
      if (::sigwait(&set, &signo) != 0) continue;
      if (!Deliver(signo)) DieBy(signo);
    }
  }).detach();
}

bool StopSignals::Deliver(int signo) {
  std::lock_guard<std::mutex> lock(mu_);
  if (scopes_ == 0 || caught_ != 0) return false;
  caught_ = signo;
  source_.request_stop();
  return true;
}

int StopSignals::caught() const {
  std::lock_guard<std::mutex> lock(mu_);
  return caught_;
}

void IgnoreBrokenPipes() {
  struct sigaction sa = {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGPIPE, &sa, nullptr);
}

void StopSignals::ReraiseIfCaught() {
  int signo;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!installed_ || caught_ == 0) return;
    signo = caught_;
  }
  DieBy(signo);
}

}  // namespace ccmon
