#include "agent/cli/notify.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "base/utf8.h"

extern char** environ;

namespace ccmon {
namespace {

constexpr size_t kMaxBodyBytes = 300;

// Printable text for a notification: controls become spaces, at most kMaxBodyBytes.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : Utf8Prefix(s, kMaxBodyBytes)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  if (!IsValidUtf8(out)) out = TerminalSafe(out);
  return out;
}

// An AppleScript string literal.
std::string AppleScriptString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

bool PosixCommandRunner::InPath(const std::string& program) {
  if (program.empty() || program.find('/') != std::string::npos) return false;
  const std::string path = env_->GetEnvVar("PATH").value_or("/usr/local/bin:/usr/bin:/bin");
  std::string_view rest = path;
  while (true) {
    const size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + program;
    FileInfo info;
    if (env_->Stat(candidate, &info).ok() && info.type == FileType::kRegular &&
        ::access(candidate.c_str(), X_OK) == 0)
      return true;
    if (colon == std::string_view::npos) return false;
    rest.remove_prefix(colon + 1);
  }
}

Status PosixCommandRunner::Start(const std::vector<std::string>& argv) {
  if (argv.empty()) return Status::InvalidArgument("no command");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::IoError(argv[0] + ": " + std::strerror(rc));
  std::thread([pid] {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }).detach();
  return Status::Ok();
}

std::optional<std::vector<std::string>> NotificationCommand(const std::string& os,
                                                            const std::string& title,
                                                            const std::string& body) {
  const std::string t = Printable(title), b = Printable(body);
  if (os == "Linux")
    return std::vector<std::string>{"notify-send", "--app-name=ccmon-agent", "--", t, b};
  if (os == "Darwin")
    return std::vector<std::string>{
        "osascript", "-e",
        "display notification " + AppleScriptString(b) + " with title " + AppleScriptString(t)};
  return std::nullopt;
}

PushFailureNotifier::PushFailureNotifier(Clock* clock, CommandRunner* runner, std::string os)
    : clock_(clock), runner_(runner), os_(std::move(os)) {}

bool PushFailureNotifier::Observe(const AgentStatus& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status.consecutive_push_failures < kNotifyAfterFailures) return false;
  const auto now = clock_->Now();
  if (last_ && now - *last_ < kNotifyMinInterval) return false;
  std::optional<std::vector<std::string>> argv =
      NotificationCommand(os_, "ccmon-agent: pushes failing",
                          std::to_string(status.consecutive_push_failures) +
                              " pushes failed in a row: " + status.last_push_status);
  if (!argv || !runner_->InPath((*argv)[0])) return false;
  last_ = now;  // also when starting fails: do not retry it every second
  if (!runner_->Start(*argv).ok()) return false;
  ++sent_;
  return true;
}

int PushFailureNotifier::notifications() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

}  // namespace ccmon
