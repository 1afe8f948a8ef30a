#include "agent/cli/cli.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "agent/cli/config.h"
#include "agent/cli/daemon.h"
#include "agent/cli/log.h"
#include "agent/cli/notify.h"
#include "agent/cli/service.h"
#include "agent/cli/status_file.h"
#include "agent/cli/target_test.h"
#include "base/atomic_file.h"
#include "base/utf8.h"
#include "http/http_client.h"
#include "tools/common/flags.h"
#include "tools/common/output.h"

#ifndef CCMON_VERSION
#define CCMON_VERSION "0.0.0"
#endif

namespace ccmon {
namespace {

namespace po = boost::program_options;

constexpr unsigned kHelpColumns = 100;
constexpr size_t kMaxConfigFileBytes = size_t(1) << 20;
constexpr std::chrono::milliseconds kFollowPollInterval{200};

const char kUsage[] =
    "usage: ccmon-agent COMMAND [options]\n\n"
    "  setup            write the config file (--url URL [--bearer-token-file F | --key KEY]\n"
    "                   [--device NAME] [setting…]), mode 0600\n"
    "  start            start the agent in the background (--foreground: in this process)\n"
    "  stop             stop the running agent (SIGTERM; waits up to 5 s)\n"
    "  restart          stop, then start\n"
    "  status           what the running agent reports (--json for scripts)\n"
    "  logs             the agent's log (--follow, --errors: warnings and errors only)\n"
    "  test             send an empty remote-write request and explain the answer\n"
    "  reset            delete the state directory (--config[=FILE]: and the config file)\n"
    "  install-service  write a systemd user unit (Linux) or LaunchAgent (macOS)\n"
    "  uninstall        remove what install-service wrote\n\n"
    "Settings come from flags, then CCMON_AGENT_* environment variables (--shards ->\n"
    "CCMON_AGENT_SHARDS), then the config file (key = value, keys as the flags), then the\n"
    "defaults. A flag given to a command it does not apply to is an error.\n"
    "Exit status: 0 ok, 1 failure, 2 usage or configuration error, 3 agent not running.\n";

// Which commands take which of the non-setting flags; settings go to setup, start, restart and
// test; --state-dir also to the commands that only need the state directory.
const std::vector<std::string> kCommands = {
    "setup", "start", "stop", "restart",         "status",   "logs",
    "test",  "reset", "help", "install-service", "uninstall"};
const std::vector<std::string> kSettingCommands = {"setup", "start", "restart", "test"};

struct Parsed {
  std::string command;
  std::vector<SettingValue> settings;  // from flags
  bool config_given = false;
  std::string config_path;  // --config FILE ("" for reset's bare --config)
  bool foreground = false, json = false, follow = false, errors_only = false;
  bool help = false;
};

struct Ctx {
  Env* env;
  std::ostream& out;
  std::ostream& err;
  const CliSeams& seams;
  Clock* clock;
  const std::vector<std::string>& args;
};

int UsageError(std::ostream& err, const std::string& msg) {
  err << "ccmon-agent: " << msg << "\n(ccmon-agent --help for usage)\n";
  return kExitUsage;
}

int Failure(std::ostream& err, const std::string& msg) {
  err << "ccmon-agent: " << msg << "\n";
  return kExitFailure;
}

// Parses the command line. Returns -1 when the command should run, else an exit status.
int ParseArgs(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
              Parsed* p) {
  if (args.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  p->command = args[0];
  if (p->command == "--help" || p->command == "-h" || p->command == "help") p->command = "help";
  if (p->command == "--version") {
    out << "ccmon-agent " << AgentVersion() << "\n";
    return kExitOk;
  }
  if (std::find(kCommands.begin(), kCommands.end(), p->command) == kCommands.end())
    return UsageError(err, "unknown command '" + TerminalSafe(Utf8Prefix(p->command, 60)) +
                               "' (setup, start, stop, restart, status, logs, test, reset, "
                               "install-service, uninstall)");

  po::options_description settings("Settings (setup, start, restart, test)", kHelpColumns);
  std::map<std::string, std::vector<std::string>> setting_values;
  for (const SettingSpec& spec : AgentSettings()) {
    std::string help = spec.help;
    if (spec.in_env) help += " [" + SettingEnvVar(spec.name) + "]";
    if (spec.kind == SettingKind::kBool) {
      settings.add_options()(spec.name.c_str(),
                             po::value<std::vector<std::string>>(&setting_values[spec.name])
                                 ->implicit_value({"true"}, "")
                                 ->value_name("[=true|false]"),
                             help.c_str());
    } else {
      settings.add_options()(spec.name.c_str(),
                             po::value<std::vector<std::string>>(&setting_values[spec.name])
                                 ->value_name(spec.value_name),
                             help.c_str());
    }
  }
  po::options_description general("Other options", kHelpColumns);
  std::vector<std::string> config_values;
  auto config_value = po::value<std::vector<std::string>>(&config_values)->value_name("FILE");
  if (p->command == "reset") config_value->implicit_value({""}, "");
  general.add_options()("help,h", "show this help")(
      "config", config_value,
      "config file (default $CCMON_AGENT_CONFIG, else $XDG_CONFIG_HOME/ccmon/agent.conf or "
      "~/.config/ccmon/agent.conf); reset: --config[=FILE] also removes it")(
      "foreground", po::bool_switch(&p->foreground), "start: run in this process")(
      "json", po::bool_switch(&p->json), "status: as JSON")("follow,f", po::bool_switch(&p->follow),
                                                            "logs: keep printing new lines")(
      "errors", po::bool_switch(&p->errors_only), "logs: warnings and errors only");
  po::options_description visible;
  visible.add(general).add(settings);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  po::variables_map vm;
  try {
    const po::parsed_options parsed = po::command_line_parser(rest).options(visible).run();
    const std::vector<std::string> extra =
        po::collect_unrecognized(parsed.options, po::include_positional);
    if (!extra.empty())
      return UsageError(err, "unexpected argument '" + TerminalSafe(Utf8Prefix(extra[0], 60)) +
                                 "' (one command, then options)");
    po::store(parsed, vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return UsageError(err, e.what());
  }
  if (p->command == "help" || vm.count("help")) {
    out << kUsage << visible << "\n";
    return FlushOutput(out, "standard output").ok() ? kExitOk : kExitFailure;
  }

  std::vector<FlagScope> scopes = {
      {"foreground", {"start"}}, {"json", {"status"}}, {"follow", {"logs"}}, {"errors", {"logs"}}};
  for (const SettingSpec& spec : AgentSettings()) {
    std::vector<std::string> commands = kSettingCommands;
    if (spec.name == "state-dir")
      for (const char* c : {"status", "stop", "logs", "reset", "install-service"})
        commands.push_back(c);
    scopes.push_back({spec.name, commands});
  }
  scopes.push_back({"config",
                    {"setup", "start", "stop", "restart", "status", "logs", "test", "reset",
                     "install-service"}});
  std::vector<std::string> given;
  for (const auto& [name, value] : vm)
    if (!value.defaulted() && !(value.value().type() == typeid(bool) && !value.as<bool>()))
      given.push_back(name);
  if (Status s = CheckFlagsApply(p->command, given, scopes); !s.ok())
    return UsageError(err, s.message());

  if (config_values.size() > 1) return UsageError(err, "--config given twice");
  if (!config_values.empty()) {
    p->config_given = true;
    p->config_path = config_values[0];
    if (p->config_path.empty() && p->command != "reset")
      return UsageError(err, "--config wants a file name");
  }
  for (const SettingSpec& spec : AgentSettings())
    for (const std::string& v : setting_values[spec.name])
      p->settings.push_back({spec.name, v, "--" + spec.name});
  return -1;
}

// The config file to use: --config, $CCMON_AGENT_CONFIG, or the default. *required: the user
// named it (then it must exist).
Status ConfigFilePath(const Parsed& p, Env* env, std::string* path, bool* required) {
  *required = true;
  if (p.config_given && !p.config_path.empty()) {
    *path = p.config_path;
    return Status::Ok();
  }
  if (std::optional<std::string> v = env->GetEnvVar(kConfigFileEnvVar); v && !v->empty()) {
    *path = *v;
    return Status::Ok();
  }
  *required = false;
  return DefaultConfigFilePath(env, path);
}

// The set CCMON_AGENT_* variables the agent does not read: a misspelt setting, or one that is
// not taken from the environment (--header: its values may be credentials). Logged at start, so
// that a setting the user believes is in effect does not go unnoticed.
std::vector<std::string> UnreadAgentEnvVars(Env* env) {
  std::vector<std::string> unread;
  for (const std::string& var : env->GetEnvVarNames("CCMON_AGENT_")) {
    if (var == kConfigFileEnvVar || var == kReadyFdEnvVar || var == kBulkStartEnvVar) continue;
    const bool read =
        std::any_of(AgentSettings().begin(), AgentSettings().end(),
                    [&](const SettingSpec& s) { return s.in_env && SettingEnvVar(s.name) == var; });
    if (!read) unread.push_back(var);
  }
  return unread;
}

// Flags > environment > config file > defaults. Every failure here is a usage/config error.
Status LoadConfig(const Parsed& p, Ctx& c, AgentConfig* cfg) {
  if (std::optional<std::string> v = c.env->GetEnvVar(kBulkStartEnvVar);
      v && *v != "on" && *v != "off") {
    return Status::InvalidArgument(std::string(kBulkStartEnvVar) + " wants on or off, got '" + *v +
                                   "'");
  }
  ConfigLayers layers;
  layers.flags = p.settings;
  layers.env = SettingsFromEnv(c.env);
  std::string path;
  bool required = false;
  Status where = ConfigFilePath(p, c.env, &path, &required);
  if (!where.ok() && required) return where;
  std::string read_from;
  if (where.ok()) {
    FileInfo info;
    Status st = c.env->Stat(path, &info);
    if (st.ok() && info.type == FileType::kDirectory)
      return Status::InvalidArgument(path + ": the config file is a directory");
    if (!st.ok() && (required || st.code() != Status::Code::kNotFound))
      return Status::InvalidArgument("config file " + st.message());
    if (st.ok()) {
      std::string text;
      if (Status s = ReadFileToString(c.env, path, kMaxConfigFileBytes, &text); !s.ok())
        return Status::InvalidArgument("config file " + s.message());
      if (Status s = ParseConfigFile(text, path, &layers.file); !s.ok()) return s;
      // Its relative paths are relative to it, not to where the agent happens to run (a
      // service runs in $HOME or /).
      std::error_code ec;
      const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
      if (ec) return Status::InvalidArgument("config file " + path + ": " + ec.message());
      ResolveRelativePaths(DirName(absolute.string()), c.env->GetEnvVar("HOME").value_or(""),
                           &layers.file);
      read_from = path;
    }
  }
  if (Status s = BuildAgentConfig(layers, c.env, c.seams.hostname, cfg); !s.ok()) return s;
  cfg->config_file = read_from;
  return Status::Ok();
}

std::string PidPath(const AgentConfig& cfg) { return cfg.state_dir + "/" + kPidFileName; }
std::string StatusPath(const AgentConfig& cfg) { return cfg.state_dir + "/" + kStatusFileName; }
std::string LogPath(const AgentConfig& cfg) { return cfg.state_dir + "/" + kLogFileName; }

std::string FormatUnix(int64_t unix_s) {
  if (unix_s <= 0) return "never";
  // "ts=2026-11-26T12:45:51.000Z …" -> "2026-11-26T12:45:51Z"
  return FormatLogLine(unix_s * 1000, LogLevel::kInfo, "", {}).substr(3, 19) + "Z";
}

// ---------------------------------------------------------------------------------------------
// setup

int CmdSetup(const Parsed& p, Ctx& c) {
  bool has_url = false;
  for (const SettingValue& v : p.settings) has_url = has_url || v.name == "url";
  if (!has_url) return UsageError(c.err, "setup needs --url URL");
  // Paths are written absolute: `start` may run elsewhere (a service runs in $HOME or /).
  std::vector<SettingValue> settings = p.settings;
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) return Failure(c.err, "cannot tell the current directory: " + ec.message());
  ResolveRelativePaths(cwd.string(), c.env->GetEnvVar("HOME").value_or(""), &settings);
  ConfigLayers layers;
  layers.flags = settings;
  AgentConfig cfg;
  if (Status s = BuildAgentConfig(layers, c.env, c.seams.hostname, &cfg); !s.ok())
    return UsageError(c.err, s.message());
  std::vector<HttpHeader> headers;
  if (Status s = BuildTargetHeaders(c.env, cfg, &headers); !s.ok())
    return UsageError(c.err, s.message());
  std::string path;
  bool required = false;
  if (Status s = ConfigFilePath(p, c.env, &path, &required); !s.ok())
    return Failure(c.err, "no place for the config file: " + s.message() + "; give --config FILE");
  FileInfo info;
  if (c.env->Stat(path, &info).ok() && info.type != FileType::kRegular)
    return Failure(c.err, path + " exists and is not a regular file");
  const bool replaced = c.env->Stat(path, &info).ok();
  if (Status s = WriteFileAtomically(c.env, path, FormatConfigFile(settings), 0600); !s.ok())
    return Failure(c.err, "could not write the config file: " + s.message());

  std::string auth = "none";
  if (!cfg.key.empty()) auth = "device key (hidden)";
  if (!cfg.bearer_token_file.empty()) auth = "bearer token from " + cfg.bearer_token_file;
  if (!cfg.basic_auth_user.empty())
    auth =
        "basic auth as " + cfg.basic_auth_user + ", password from " + cfg.basic_auth_password_file;
  c.out << (replaced ? "replaced " : "wrote ") << path << " (mode 0600)\n"
        << "  url     " << cfg.url << "\n"
        << "  auth    " << auth << "\n"
        << "  device  " << TerminalSafe(cfg.device) << "\n";
  for (const std::string& h : cfg.headers)
    c.out << "  header  " << TerminalSafe(h.substr(0, h.find(':'))) << ": (hidden)\n";
  c.out << "next: ccmon-agent test, then ccmon-agent start (or install-service)\n";
  return FlushOutput(c.out, "standard output").ok() ? kExitOk : kExitFailure;
}

// ---------------------------------------------------------------------------------------------
// start --foreground

// Creates the state directory (mode 0700) if it is missing. Its marker is written once the pid
// lock is held (MarkStateDir): starts racing on a new directory would otherwise all write it
// through the one temporary file, and the losers failed on its rename instead of on the lock.
Status PrepareStateDir(Env* env, const std::string& dir) {
  if (Status s = env->CreateDirs(DirName(dir)); !s.ok()) return s;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::IoError(dir + ": mkdir: " + std::strerror(errno));
  FileInfo info;
  if (Status s = env->Stat(dir, &info); !s.ok()) return s;
  if (info.type != FileType::kDirectory) return Status::IoError(dir + ": not a directory");
  return Status::Ok();
}

// Writes the marker that tells `reset` the directory is the agent's, if it is missing. Called
// under the pid lock.
Status MarkStateDir(Env* env, const std::string& dir) {
  FileInfo info;
  const std::string marker = dir + "/" + kStateMarkerFileName;
  if (!env->Stat(marker, &info).ok()) {
    if (Status s = WriteFileAtomically(env, marker,
                                       "This directory is ccmon-agent's state "
                                       "(`ccmon-agent reset` removes it).\n",
                                       0600);
        !s.ok())
      return s;
  }
  return Status::Ok();
}

// Serialises the engine's status updates into the status file and the notifier.
class StatusPublisher {
 public:
  StatusPublisher(Env* env, std::string path, Clock* clock, Logger* log,
                  PushFailureNotifier* notifier)
      : env_(env), path_(std::move(path)), clock_(clock), log_(log), notifier_(notifier) {
    started_unix_ = clock_->NowUnixMs() / 1000;
  }
  void Publish(const AgentStatus& status) {
    std::lock_guard<std::mutex> lock(mu_);
    AgentStatus s = status;
    s.pid = int64_t(::getpid());
    s.version = AgentVersion();
    s.started_unix = started_unix_;
    const int64_t now_ms = clock_->NowUnixMs();
    s.updated_unix = now_ms / 1000;
    // The engine publishes at every step (every 5 s while idle): the same status is rewritten
    // only once its time is kRewriteUnchangedMs old, so `updated` stays recent without a file
    // written (6 % of an idle agent's CPU) for nothing new. A change is written at once, and
    // a failed write is retried at the next call.
    AgentStatus content = s;
    content.updated_unix = 0;
    const bool unchanged = written_ && last_error_.empty() && content == written_content_ &&
                           now_ms - written_ms_ < kRewriteUnchangedMs && now_ms >= written_ms_;
    if (unchanged) {
      Observe(s);
      return;
    }
    Status w = WriteStatusFile(env_, path_, s);
    if (w.ok()) {
      written_ = true;
      written_content_ = std::move(content);
      written_ms_ = now_ms;
    }
    // Log a failing status write once per distinct error, and its recovery, not every second.
    if (!w.ok() && w.message() != last_error_)
      log_->Warn("cannot write the status file", {{"error", w.message()}});
    if (w.ok() && !last_error_.empty()) log_->Info("status file written again");
    last_error_ = w.ok() ? "" : w.message();
    Observe(s);
  }
  // A status unchanged but for its time is rewritten after this long (ms).
  static constexpr int64_t kRewriteUnchangedMs = 60000;
  Status first_write() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_.empty() ? Status::Ok() : Status::IoError(last_error_);
  }

 private:
  Env* env_;
  std::string path_;
  Clock* clock_;
  Logger* log_;
  PushFailureNotifier* notifier_;
  void Observe(const AgentStatus& s) {
    if (notifier_ != nullptr && notifier_->Observe(s))
      log_->Warn("desktop notification: pushes failing",
                 {{"failures", s.consecutive_push_failures}, {"last", s.last_push_status}});
  }
  std::mutex mu_;
  int64_t started_unix_ = 0;
  std::string last_error_;
  bool written_ = false;         // a status was written
  AgentStatus written_content_;  // ...this one, its updated_unix left 0
  int64_t written_ms_ = 0;       // ...at this time
};

// Reports the agent up once the engine says so (AgentRunHooks::ready), and otherwise what kept
// it from starting: the first error the engine logged. Passes every entry on to the agent's log.
// Thread-safe.
class StartupReporter : public Logger {
 public:
  StartupReporter(Logger* log, int ready_fd) : log_(log), ready_fd_(ready_fd) {}
  void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) override {
    if (level == LogLevel::kError) {
      std::lock_guard<std::mutex> lock(mu_);
      if (first_error_.empty()) {
        first_error_ = std::string(msg);
        for (const LogField& f : fields)
          if (f.key == "error") first_error_ += ": " + f.value;
      }
    }
    log_->Log(level, msg, fields);
  }
  void Ready() {
    std::lock_guard<std::mutex> lock(mu_);
    if (reported_) return;
    reported_ = true;
    ReportReady(ready_fd_, "ok");
  }
  // After the engine returned: a start that never got ready is told why.
  void EngineEnded() {
    std::lock_guard<std::mutex> lock(mu_);
    if (reported_) return;
    reported_ = true;
    ReportReady(ready_fd_, first_error_.empty() ? "it stopped before it was ready" : first_error_);
  }

 private:
  Logger* log_;
  const int ready_fd_;
  std::mutex mu_;
  std::string first_error_;
  bool reported_ = false;
};

int CmdStartForeground(const Parsed& p, Ctx& c) {
  // From the first moment: a SIGTERM during start-up (a script that saw the pid file) requests a
  // stop instead of killing the process halfway, and the engine then starts already stopped.
  StopSignals::Scope scope(c.seams.signals);
  const std::stop_token stop = scope.token();
  IgnoreBrokenPipes();  // standard error piped to a reader that goes away must not end the agent
  const int ready_fd = c.seams.ready_fd;
  auto fail = [&](int code, const std::string& msg) {
    ReportReady(ready_fd, msg);
    c.err << "ccmon-agent: " << msg << "\n";
    return code;
  };
  AgentConfig cfg;
  if (Status s = LoadConfig(p, c, &cfg); !s.ok()) return fail(kExitUsage, s.message());
  std::vector<HttpHeader> headers;
  if (Status s = BuildTargetHeaders(c.env, cfg, &headers); !s.ok())
    return fail(kExitUsage, s.message());
  if (!c.seams.run_agent) return fail(kExitFailure, "no engine in this build");
  if (Status s = PrepareStateDir(c.env, cfg.state_dir); !s.ok())
    return fail(kExitFailure, "state directory: " + s.message());
  std::unique_ptr<PidFileLock> lock;
  if (Status s = PidFileLock::Acquire(PidPath(cfg), int64_t(::getpid()), &lock); !s.ok())
    return fail(kExitFailure, s.message() + " (" + cfg.state_dir + ")");
  if (Status s = MarkStateDir(c.env, cfg.state_dir); !s.ok())
    return fail(kExitFailure, "state directory: " + s.message());
  FileLoggerOptions log_options;
  log_options.path = LogPath(cfg);
  log_options.also_to = c.seams.log_to_err ? &c.err : nullptr;
  log_options.clock = c.clock;
  std::unique_ptr<FileLogger> logger;
  if (Status s = FileLogger::Open(log_options, &logger); !s.ok())
    return fail(kExitFailure, "log file: " + s.message());

  PosixCommandRunner real_runner(c.env);
  PushFailureNotifier notifier(c.clock, c.seams.commands ? c.seams.commands : &real_runner,
                               c.seams.os);
  StatusPublisher publisher(c.env, StatusPath(cfg), c.clock, logger.get(), &notifier);
  AgentStatus initial;
  publisher.Publish(initial);
  if (Status s = publisher.first_write(); !s.ok())
    return fail(kExitFailure, "status file: " + s.message());
  logger->Info("agent started", {{"pid", int64_t(::getpid())},
                                 {"version", AgentVersion()},
                                 {"device", cfg.device},
                                 {"url", cfg.url},
                                 {"state_dir", cfg.state_dir},
                                 {"config_file", cfg.config_file}});
  for (const std::string& var : UnreadAgentEnvVars(c.env)) {
    logger->Warn(
        "environment variable not read: no such setting, or not one taken from the "
        "environment",
        {{"variable", var}});
  }
  StartupReporter startup(logger.get(), ready_fd);

  AgentRunHooks hooks;
  hooks.log = &startup;
  hooks.ready = [&startup] { startup.Ready(); };
  hooks.publish_status = [&publisher](const AgentStatus& s) { publisher.Publish(s); };

  std::mutex mu;
  std::condition_variable_any cv;
  bool done = false;
  int code = kExitFailure;
  std::thread engine([&] {
    int rc = kExitFailure;
    try {
      rc = c.seams.run_agent(cfg, stop, hooks);
    } catch (const std::exception& e) {
      logger->Error("engine failed", {{"error", e.what()}});
    }
    startup.EngineEnded();
    std::lock_guard<std::mutex> l(mu);
    code = rc;
    done = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> l(mu);
    std::stop_token wait_stop = stop;
    cv.wait(l, wait_stop, [&] { return done; });
    if (stop.stop_requested())
      logger->Info("stopping", {{"signal", c.seams.signals ? c.seams.signals->caught() : 0}});
    if (!done) {
      if (!cv.wait_for(l, kAgentStopGrace, [&] { return done; })) {
        logger->Error("the engine did not stop in time; exiting without it",
                      {{"grace_ms", int64_t(kAgentStopGrace.count())}});
        c.err.flush();
        std::_Exit(kExitFailure);  // the lock goes with the process; state is crash-safe
      }
    }
  }
  engine.join();
  logger->Info("agent stopped", {{"exit_status", code}});
  return code;
}

// ---------------------------------------------------------------------------------------------
// start (background), stop, restart

int StartBackground(const Parsed& p, Ctx& c, const std::vector<std::string>& flags) {
  AgentConfig cfg;
  if (Status s = LoadConfig(p, c, &cfg); !s.ok()) return UsageError(c.err, s.message());
  std::vector<HttpHeader> headers;
  if (Status s = BuildTargetHeaders(c.env, cfg, &headers); !s.ok())
    return UsageError(c.err, s.message());
  AgentProcess proc;
  if (Status s = ProbeAgent(PidPath(cfg), &proc); !s.ok()) return Failure(c.err, s.message());
  if (proc.running)
    return Failure(c.err, "already running (pid " + std::to_string(proc.pid) + ", state dir " +
                              cfg.state_dir + ")");
  if (c.seams.self_exe.empty()) return Failure(c.err, "cannot find this program's own path");
  std::vector<std::string> argv = {c.seams.self_exe, "start", "--foreground"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  BackgroundStart bs;
  if (Status s = StartInBackground(argv, kStartTimeout, &bs); !s.ok())
    return Failure(c.err, "could not start the agent: " + s.message());
  if (!bs.ready)
    return Failure(c.err,
                   "the agent did not start: " + bs.message + "\n(log: " + LogPath(cfg) + ")");
  c.out << "ccmon-agent started (pid " << bs.pid << ")";
  if (proc.stale_pid) c.out << "; a stale pid file of pid " << proc.stale_pid << " was replaced";
  c.out << "\n  state dir " << cfg.state_dir << "\n  log       " << LogPath(cfg) << "\n";
  return FlushOutput(c.out, "standard output").ok() ? kExitOk : kExitFailure;
}

int CmdStop(const Parsed& p, Ctx& c, bool quiet_if_not_running) {
  AgentConfig cfg;
  if (Status s = LoadConfig(p, c, &cfg); !s.ok()) return UsageError(c.err, s.message());
  bool was_running = false;
  int64_t pid = 0;
  Status s = StopAgent(PidPath(cfg), kStopTimeout, &was_running, &pid);
  if (!s.ok()) return Failure(c.err, s.message());
  if (!was_running) {
    if (quiet_if_not_running) return kExitOk;
    c.err << "ccmon-agent: not running (state dir " << cfg.state_dir << ")\n";
    return kExitNotRunning;
  }
  c.out << "ccmon-agent stopped (pid " << pid << ")\n";
  return FlushOutput(c.out, "standard output").ok() ? kExitOk : kExitFailure;
}

// ---------------------------------------------------------------------------------------------
// status

int CmdStatus(const Parsed& p, Ctx& c) {
  AgentConfig cfg;
  if (Status s = LoadConfig(p, c, &cfg); !s.ok()) return UsageError(c.err, s.message());
  AgentProcess proc;
  if (Status s = ProbeAgent(PidPath(cfg), &proc); !s.ok()) return Failure(c.err, s.message());
  AgentStatus st;
  Status read = proc.running ? ReadStatusFile(c.env, StatusPath(cfg), &st) : Status::Ok();
  if (p.json) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    j["running"] = proc.running;
    j["state_dir"] = cfg.state_dir;
    if (!proc.running && proc.stale_pid) j["stale_pid"] = proc.stale_pid;
    if (proc.running) {
      if (!read.ok()) j["status_error"] = read.message();
      nlohmann::ordered_json fields = nlohmann::ordered_json::parse(StatusToJson(st));
      if (!read.ok()) fields["pid"] = proc.pid;
      for (auto& [k, v] : fields.items()) j[k] = v;
    }
    c.out << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  } else if (!proc.running) {
    c.out << "ccmon-agent is not running (state dir " << cfg.state_dir << ")";
    if (proc.stale_pid)
      c.out << "; a stale pid file names pid " << proc.stale_pid << " (the agent was killed?)";
    c.out << "\n";
  } else {
    c.out << "ccmon-agent is running (pid " << proc.pid << ")\n";
    if (!read.ok()) {
      c.out << "  status file: " << TerminalSafe(read.message()) << "\n";
    } else {
      c.out << "  version         " << st.version << ", started " << FormatUnix(st.started_unix)
            << "\n"
            << "  state dir       " << cfg.state_dir << "\n"
            << "  files tracked   " << st.files_tracked << "\n"
            << "  bytes behind    " << st.bytes_behind << "\n"
            << "  lines read      " << st.lines_read << "\n"
            << "  caught up       " << (st.caught_up != 0 ? "yes" : "no, reading the history")
            << "\n"
            << "  outbox          " << st.outbox_requests << " requests, " << st.outbox_bytes
            << " bytes\n"
            << "  last push       "
            << (st.last_push_unix
                    ? FormatUnix(st.last_push_unix) + " " + TerminalSafe(st.last_push_status)
                    : std::string("none yet"))
            << "\n";
      if (st.consecutive_push_failures)
        c.out << "  failing pushes  " << st.consecutive_push_failures << " in a row\n";
      if (!st.last_error.empty())
        c.out << "  last error      " << TerminalSafe(st.last_error) << "\n";
      c.out << "  updated         " << FormatUnix(st.updated_unix) << "\n";
    }
  }
  if (!FlushOutput(c.out, "standard output").ok()) {
    c.err << "ccmon-agent: standard output: write failed\n";
    return kExitFailure;
  }
  return proc.running ? kExitOk : kExitNotRunning;
}

// ---------------------------------------------------------------------------------------------
// logs

bool WantLine(std::string_view line, bool errors_only) {
  if (!errors_only) return true;
  LogLevel level;
  return ParseLogLevel(line, &level) && level >= LogLevel::kWarn;
}

int CmdLogs(const Parsed& p, Ctx& c) {
  AgentConfig cfg;
  if (Status s = LoadConfig(p, c, &cfg); !s.ok()) return UsageError(c.err, s.message());
  const std::string path = LogPath(cfg);
  StopSignals::Scope scope(c.seams.signals);
  const std::stop_token stop = scope.token();
  uint64_t offset = 0, inode = 0;
  std::string partial;
  bool seen_file = false;
  while (true) {
    FileInfo info;
    Status st = c.env->Stat(path, &info);
    if (st.ok()) {
      if (seen_file && (info.inode != inode || info.size < offset)) {
        offset = 0;  // rotated or truncated: the new file from its start
        partial.clear();
      }
      seen_file = true;
      inode = info.inode;
      if (info.size > offset) {
        std::unique_ptr<SequentialFile> f;
        if (Status s = c.env->NewSequentialFile(path, offset, &f); !s.ok())
          return Failure(c.err, s.message());
        char buf[64 << 10];
        size_t got = 0;
        do {
          if (Status s = f->Read(buf, sizeof buf, &got); !s.ok())
            return Failure(c.err, s.message());
          offset += got;
          partial.append(buf, got);
          size_t start = 0, nl;
          while ((nl = partial.find('\n', start)) != std::string::npos) {
            std::string_view line(partial.data() + start, nl + 1 - start);
            if (WantLine(line, p.errors_only)) c.out << line;
            start = nl + 1;
          }
          partial.erase(0, start);
        } while (got > 0);
        c.out.flush();
        if (!c.out) return Failure(c.err, "standard output: write failed");
      }
    } else if (st.code() != Status::Code::kNotFound) {
      return Failure(c.err, st.message());
    } else if (!p.follow) {
      return Failure(c.err, "no log yet at " + path);
    }
    if (!p.follow) break;
    if (!c.clock->WaitFor(kFollowPollInterval, stop)) break;
  }
  if (!partial.empty() && WantLine(partial, p.errors_only)) c.out << partial << "\n";
  return FlushOutput(c.out, "standard output").ok() ? kExitOk : kExitFailure;
}

// ---------------------------------------------------------------------------------------------
// test

int CmdTest(const Parsed& p, Ctx& c) {
  AgentConfig cfg;
  if (Status s = LoadConfig(p, c, &cfg); !s.ok()) return UsageError(c.err, s.message());
  std::vector<HttpHeader> headers;
  if (Status s = BuildTargetHeaders(c.env, cfg, &headers); !s.ok())
    return UsageError(c.err, s.message());
  HttpClientOptions options = TargetClientOptions(cfg, c.env);
  options.timeout = std::chrono::seconds(10);
  RealHttpTransport real(options);
  HttpTransport* transport = c.seams.transport ? c.seams.transport : &real;
  const TargetTestResult r = TestTarget(cfg.url, headers, transport);
  c.out << cfg.url << ": " << TerminalSafe(r.summary) << "\n";
  if (!r.advice.empty()) c.out << "  " << r.advice << "\n";
  if (!FlushOutput(c.out, "standard output").ok()) return kExitFailure;
  return r.ok ? kExitOk : kExitFailure;
}

// ---------------------------------------------------------------------------------------------
// reset

int CmdReset(const Parsed& p, Ctx& c) {
  AgentConfig cfg;
  if (Status s = LoadConfig(p, c, &cfg); !s.ok()) return UsageError(c.err, s.message());
  AgentProcess proc;
  if (Status s = ProbeAgent(PidPath(cfg), &proc); !s.ok()) return Failure(c.err, s.message());
  if (proc.running)
    return Failure(c.err, "the agent is running (pid " + std::to_string(proc.pid) +
                              "): stop it first (ccmon-agent stop)");
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir(cfg.state_dir);
  const fs::file_status fst = fs::symlink_status(dir, ec);
  if (!fs::exists(fst)) {
    c.out << "no state directory at " << cfg.state_dir << "\n";
  } else if (!fs::is_directory(fst)) {
    return Failure(c.err, cfg.state_dir + " is not a directory; not touching it");
  } else {
    const bool marked = fs::exists(dir / kStateMarkerFileName, ec);
    const bool empty = fs::is_empty(dir, ec);
    if (ec) return Failure(c.err, cfg.state_dir + ": " + ec.message());
    if (!marked && !empty)
      return Failure(c.err, cfg.state_dir +
                                " does not look like a ccmon-agent state directory (no " +
                                kStateMarkerFileName + " file); remove it yourself if you mean it");
    AgentProcess started;  // one that started since the probe above
    uint64_t n = 0;
    if (Status s = RemoveStateDir(cfg.state_dir, &started, &n); !s.ok())
      return Failure(c.err, s.message());
    if (started.running)
      return Failure(c.err, "the agent is running (pid " + std::to_string(started.pid) +
                                "): stop it first (ccmon-agent stop)");
    c.out << "removed the state directory " << cfg.state_dir << " (" << n << " entries)\n";
  }
  if (p.config_given) {
    std::string path;
    bool required = false;
    Parsed q = p;
    if (Status s = ConfigFilePath(q, c.env, &path, &required); !s.ok())
      return Failure(c.err, s.message());
    FileInfo info;
    if (!c.env->LinkStat(path, &info).ok()) {
      c.out << "no config file at " << path << "\n";
    } else if (info.type == FileType::kDirectory) {
      return Failure(c.err, path + " is a directory; not removing it");
    } else if (Status s = c.env->RemoveFile(path); !s.ok()) {
      return Failure(c.err, s.message());
    } else {
      c.out << "removed the config file " << path << "\n";
    }
  }
  return FlushOutput(c.out, "standard output").ok() ? kExitOk : kExitFailure;
}

// ---------------------------------------------------------------------------------------------
// install-service, uninstall

int CmdInstallService(const Parsed& p, Ctx& c) {
  ServiceKind kind;
  if (!ServiceKindFor(c.seams.os, &kind))
    return Failure(c.err, "install-service knows Linux (systemd) and macOS (launchd), not '" +
                              c.seams.os + "'");
  if (c.seams.self_exe.empty() || c.seams.self_exe.front() != '/')
    return Failure(c.err, "cannot find this program's absolute path");
  AgentConfig cfg;
  if (Status s = LoadConfig(p, c, &cfg); !s.ok()) return UsageError(c.err, s.message());
  ServiceSpec spec;
  spec.exe = c.seams.self_exe;
  spec.args = {"start", "--foreground"};
  if (p.config_given) {
    std::string path = p.config_path;
    if (path.front() != '/') path = std::filesystem::absolute(path).string();
    spec.args.insert(spec.args.end(), {"--config", path});
  }
  for (const SettingValue& v : p.settings) {
    if (v.name != "state-dir") continue;
    std::string dir = v.value;
    if (dir.front() != '/') dir = std::filesystem::absolute(dir).string();
    spec.args.insert(spec.args.end(), {"--state-dir", dir});
  }
  spec.log_file = LogPath(cfg);
  std::string path;
  if (Status s = ServiceFilePath(c.env, kind, &path); !s.ok()) return Failure(c.err, s.message());
  const std::string text =
      kind == ServiceKind::kSystemdUser ? SystemdUserUnit(spec) : LaunchAgentPlist(spec);
  if (Status s = WriteFileAtomically(c.env, path, text, 0644); !s.ok())
    return Failure(c.err, s.message());
  c.out << "wrote " << path << "\nenable and start it with:\n" << ServiceEnableCommands(kind, path);
  PosixCommandRunner runner(c.env);
  CommandRunner* commands = c.seams.commands ? c.seams.commands : &runner;
  const char* tool = kind == ServiceKind::kSystemdUser ? "systemctl" : "launchctl";
  if (!commands->InPath(tool))
    c.out << "(" << tool << " is not in PATH here: without a service manager run "
          << "`ccmon-agent start` instead)\n";
  c.out << "(if an agent was started with `ccmon-agent start`, stop it first)\n";
  return FlushOutput(c.out, "standard output").ok() ? kExitOk : kExitFailure;
}

int CmdUninstall(const Parsed& p, Ctx& c) {
  ServiceKind kind;
  if (!ServiceKindFor(c.seams.os, &kind))
    return Failure(c.err,
                   "uninstall knows Linux (systemd) and macOS (launchd), not '" + c.seams.os + "'");
  std::string path;
  if (Status s = ServiceFilePath(c.env, kind, &path); !s.ok()) return Failure(c.err, s.message());
  FileInfo info;
  if (!c.env->LinkStat(path, &info).ok()) {
    c.out << "nothing to remove: no " << path << "\n";
  } else {
    c.out << "stop the service first if it runs:\n" << ServiceDisableCommands(kind, path);
    if (Status s = c.env->RemoveFile(path); !s.ok()) return Failure(c.err, s.message());
    c.out << "removed " << path << "\n";
  }
  return FlushOutput(c.out, "standard output").ok() ? kExitOk : kExitFailure;
}

}  // namespace

const char* AgentVersion() { return CCMON_VERSION; }

int RunAgentCli(const std::vector<std::string>& args, Env* env, std::ostream& out,
                std::ostream& err, const CliSeams& seams) {
  Parsed p;
  if (int rc = ParseArgs(args, out, err, &p); rc >= 0) return rc;
  Ctx c{env, out, err, seams, seams.clock ? seams.clock : Clock::Real(), args};
  const std::vector<std::string> flags(args.begin() + 1, args.end());
  if (p.command == "setup") return CmdSetup(p, c);
  if (p.command == "start")
    return p.foreground ? CmdStartForeground(p, c) : StartBackground(p, c, flags);
  if (p.command == "stop") return CmdStop(p, c, false);
  if (p.command == "restart") {
    if (int rc = CmdStop(p, c, true); rc != kExitOk) return rc;
    return StartBackground(p, c, flags);
  }
  if (p.command == "status") return CmdStatus(p, c);
  if (p.command == "logs") return CmdLogs(p, c);
  if (p.command == "test") return CmdTest(p, c);
  if (p.command == "reset") return CmdReset(p, c);
  if (p.command == "install-service") return CmdInstallService(p, c);
  if (p.command == "uninstall") return CmdUninstall(p, c);
  return UsageError(err, "unknown command");
}

}  // namespace ccmon
