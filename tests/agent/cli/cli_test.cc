// The commands in-process: real files in a temp dir, a private environment, a fake engine and a
// fake transport. The real binary (background start, signals) is agent_cli_test.py.
#include "agent/cli/cli.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "agent/cli/daemon.h"
#include "agent/cli/test_env.h"
#include "remote_write/write_request.h"
#include "testing/fake_clock.h"
#include "testing/refusing_stream.h"
#include "testing/temp_dir.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

using testing_util::FakeClock;
using testing_util::PosixEnvWithVars;
using testing_util::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ScriptedTransport : public HttpTransport {
 public:
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    last = request;
    ++calls;
    if (!error.ok()) return error;
    response->status = status;
    response->body = body;
    return Status::Ok();
  }
  HttpRequest last;
  int calls = 0;
  Status error;
  unsigned status = 204;
  std::string body;
};

class AgentCliTest : public ::testing::Test {
 protected:
  AgentCliTest() : env_({{"HOME", tmp_ / "home"}}) {
    seams_.clock = &clock_;
    seams_.hostname = "testhost";
    seams_.os = "Linux";
    seams_.self_exe = "/usr/local/bin/ccmon-agent";
    seams_.commands = &commands_;
    seams_.transport = &transport_;
    seams_.log_to_err = false;
  }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    return RunAgentCli(args, &env_, out_, err_, seams_);
  }
  std::string state() { return tmp_ / "state"; }

  TempDir tmp_;
  PosixEnvWithVars env_;
  FakeClock clock_;
  testing_util::FakeCommandRunner commands_;
  ScriptedTransport transport_;
  CliSeams seams_;
  std::ostringstream out_, err_;
};

TEST_F(AgentCliTest, UsageErrors) {
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_EQ(Run({"frobnicate"}), kExitUsage);
  EXPECT_NE(err_.str().find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_EQ(Run({"status", "--foreground"}), kExitUsage);
  EXPECT_NE(err_.str().find("--foreground does not apply to status (only to start)"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(Run({"start", "--json"}), kExitUsage);
  EXPECT_EQ(Run({"status", "--url", "http://h/"}), kExitUsage);
  EXPECT_EQ(Run({"setup"}), kExitUsage);
  EXPECT_NE(err_.str().find("setup needs --url"), std::string::npos);
  EXPECT_EQ(Run({"setup", "--url", "http://h/", "--shards", "-3"}), kExitUsage);
  EXPECT_EQ(Run({"status", "extra"}), kExitUsage);
  EXPECT_EQ(Run({"status", "--config"}), kExitUsage);  // wants a file name here
  EXPECT_EQ(Run({"--help"}), kExitOk);
  EXPECT_NE(out_.str().find("install-service"), std::string::npos);
  EXPECT_NE(out_.str().find("CCMON_AGENT_MAX_SAMPLES_PER_SEND"), std::string::npos);
  EXPECT_EQ(Run({"--version"}), kExitOk);
  EXPECT_EQ(out_.str(), std::string("ccmon-agent ") + AgentVersion() + "\n");
}

TEST_F(AgentCliTest, SetupWritesAPrivateConfigAndNeverPrintsTheKey) {
  const std::string key = "dk_SECRETsecret0123456789";
  ASSERT_EQ(Run({"setup", "--url", "http://127.0.0.1:9090/api/v1/write", "--key", key, "--device",
                 "mac-1", "--label", "team=data", "--header", "X-Scope-OrgID: t1"}),
            kExitOk)
      << err_.str();
  const std::string path = tmp_ / "home/.config/ccmon/agent.conf";
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(out_.str().find("SECRET"), std::string::npos) << out_.str();
  EXPECT_EQ(out_.str().find("t1"), std::string::npos) << out_.str();  // header values hidden
  EXPECT_NE(out_.str().find("wrote " + path), std::string::npos);
  EXPECT_NE(Slurp(path).find("key = " + key + "\n"), std::string::npos);
  // Read back by the other commands (test sends with it).
  ASSERT_EQ(Run({"test"}), kExitOk) << err_.str();
  EXPECT_EQ(transport_.last.url, "http://127.0.0.1:9090/api/v1/write");
  bool auth = false, org = false;
  for (const auto& [k, v] : transport_.last.headers) {
    auth = auth || (k == "Authorization" && v == "Bearer " + key);
    org = org || (k == "X-Scope-OrgID" && v == "t1");
  }
  EXPECT_TRUE(auth && org);
  // Setup again replaces the file.
  ASSERT_EQ(Run({"setup", "--url", "http://h:1/"}), kExitOk);
  EXPECT_NE(out_.str().find("replaced"), std::string::npos);
  EXPECT_EQ(Slurp(path).find("\nkey = "), std::string::npos);
}

// `start` may run anywhere (a service runs in $HOME or /): setup writes every path absolute,
// relative to where setup ran ("~/" from HOME, for a value the shell did not expand).
TEST_F(AgentCliTest, SetupWritesPathsAbsolute) {
  testing_util::WriteFile(tmp_ / "work/tok", "t0ken");
  testing_util::WriteFile(tmp_ / "home/ca.pem", "x");
  const std::filesystem::path before = std::filesystem::current_path();
  std::filesystem::current_path(tmp_ / "work");
  const int code = Run({"setup", "--url", "https://127.0.0.1:9090/api/v1/write", "--state-dir",
                        "st", "--bearer-token-file", "tok", "--config-dir", "../claude",
                        "--ca-file=~/ca.pem", "--device", "rel"});
  std::filesystem::current_path(before);
  ASSERT_EQ(code, kExitOk) << err_.str();
  const std::string conf = Slurp(tmp_ / "home/.config/ccmon/agent.conf");
  EXPECT_NE(conf.find("state-dir = " + tmp_ / "work/st\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("bearer-token-file = " + tmp_ / "work/tok\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("config-dir = " + tmp_ / "work/../claude\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("ca-file = " + tmp_ / "home/ca.pem\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("device = rel\n"), std::string::npos) << conf;  // not a path: as given
  // Read back from elsewhere: the token file is found.
  ASSERT_EQ(Run({"test"}), kExitOk) << err_.str();
  bool auth = false;
  for (const auto& [k, v] : transport_.last.headers) auth = auth || v == "Bearer t0ken";
  EXPECT_TRUE(auth);
}

// A hand-written config file's relative paths are relative to the file, not to the directory
// the agent runs in.
TEST_F(AgentCliTest, RelativePathsInAConfigFileAreRelativeToIt) {
  testing_util::WriteFile(tmp_ / "conf/agent.conf",
                          "url = http://127.0.0.1:9/api/v1/write\n"
                          "state-dir = st\n"
                          "bearer-token-file = ~/tok\n"
                          "config-dir = /abs/claude\n"
                          "config-dir = claude\n");
  testing_util::WriteFile(tmp_ / "home/tok", "t0ken");
  AgentConfig seen;
  seams_.run_agent = [&](const AgentConfig& c, std::stop_token, const AgentRunHooks& h) {
    seen = c;
    h.ready();
    return 0;
  };
  ASSERT_EQ(Run({"start", "--foreground", "--config", tmp_ / "conf/agent.conf"}), kExitOk)
      << err_.str();
  EXPECT_EQ(seen.state_dir, tmp_ / "conf/st");
  EXPECT_EQ(seen.bearer_token_file, tmp_ / "home/tok");
  EXPECT_EQ(seen.config_dirs, (std::vector<std::string>{"/abs/claude", tmp_ / "conf/claude"}));
  // A flag is relative to where it is given, as any command line's.
  ASSERT_EQ(Run({"start", "--foreground", "--config", tmp_ / "conf/agent.conf", "--state-dir",
                 tmp_ / "other"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(seen.state_dir, tmp_ / "other");
}

TEST_F(AgentCliTest, SetupRefusesBadInputWithoutWriting) {
  const std::string path = tmp_ / "home/.config/ccmon/agent.conf";
  EXPECT_EQ(Run({"setup", "--url", "http://h/", "--key", "dk_tooshort"}), kExitUsage);
  EXPECT_EQ(Run({"setup", "--url", "http://h/", "--bearer-token-file", tmp_ / "missing"}),
            kExitUsage);
  EXPECT_EQ(Run({"setup", "--url", "http://u:p@h/"}), kExitUsage);
  struct stat st;
  EXPECT_NE(::stat(path.c_str(), &st), 0);
  testing_util::MakeDirs(tmp_ / "dir.conf");
  EXPECT_EQ(Run({"setup", "--url", "http://h/", "--config", tmp_ / "dir.conf"}), kExitFailure);
  EXPECT_NE(err_.str().find("not a regular file"), std::string::npos) << err_.str();
}

TEST_F(AgentCliTest, ConfigFileProblemsAreUsageErrors) {
  const std::string conf = tmp_ / "agent.conf";
  testing_util::WriteFile(conf, "url = http://h/\nstate-dir = " + state() + "\nwat = 1\n");
  EXPECT_EQ(Run({"status", "--config", conf}), kExitUsage);
  EXPECT_NE(err_.str().find(conf + ":3: unknown key 'wat'"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"status", "--config", tmp_ / "missing.conf"}), kExitUsage);
  EXPECT_EQ(Run({"status", "--config", tmp_.path()}), kExitUsage);
  EXPECT_NE(err_.str().find("is a directory"), std::string::npos);
  env_.Set("CCMON_AGENT_CONFIG", tmp_ / "missing.conf");  // named by the environment: required
  EXPECT_EQ(Run({"status"}), kExitUsage);
}

// CCMON_AGENT_BULK_START is "on" or "off": a value that looks like "off" is not taken for "on".
TEST_F(AgentCliTest, ABulkStartValueOtherThanOnOrOffIsAUsageError) {
  for (const char* v : {"OFF", "0", "false", "no", " off", "off\n", ""}) {
    env_.Set("CCMON_AGENT_BULK_START", v);
    EXPECT_EQ(Run({"status", "--state-dir", state()}), kExitUsage) << v;
    EXPECT_NE(err_.str().find("CCMON_AGENT_BULK_START wants on or off, got '"), std::string::npos)
        << err_.str();
  }
  for (const char* v : {"on", "off"}) {
    env_.Set("CCMON_AGENT_BULK_START", v);
    EXPECT_EQ(Run({"status", "--state-dir", state()}), kExitNotRunning) << v << err_.str();
  }
}

TEST_F(AgentCliTest, StatusWhenNothingRuns) {
  EXPECT_EQ(Run({"status", "--state-dir", state()}), kExitNotRunning);
  EXPECT_NE(out_.str().find("not running"), std::string::npos);
  EXPECT_EQ(Run({"status", "--json", "--state-dir", state()}), kExitNotRunning);
  EXPECT_EQ(out_.str(), "{\"running\":false,\"state_dir\":\"" + state() + "\"}\n");
  EXPECT_EQ(Run({"stop", "--state-dir", state()}), kExitNotRunning);
  // The environment names the state dir too.
  env_.Set("CCMON_AGENT_STATE_DIR", tmp_ / "env-state");
  EXPECT_EQ(Run({"status", "--json"}), kExitNotRunning);
  EXPECT_NE(out_.str().find("env-state"), std::string::npos);
}

// A fake engine: publishes one status, says it runs, and waits for the stop request.
struct FakeEngine {
  std::promise<void> running;
  AgentConfig seen;
  int Run(const AgentConfig& cfg, std::stop_token stop, const AgentRunHooks& hooks) {
    seen = cfg;
    hooks.ready();
    AgentStatus s;
    s.files_tracked = 12;
    s.bytes_behind = 345;
    s.outbox_requests = 2;
    s.last_push_unix = 1795690000;
    s.last_push_status = "http 503";
    s.consecutive_push_failures = 3;
    hooks.publish_status(s);
    hooks.log->Error("push failed", {{"status", "http 503"}});
    running.set_value();
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, stop, [] { return false; });
    return 0;
  }
};

// The engine publishes its status at every step (every 5 s while idle): a status unchanged but
// for its time is rewritten once a minute, a change at once.
TEST_F(AgentCliTest, AnUnchangedStatusIsRewrittenOnlyOnceAMinute) {
  std::vector<int64_t> updated;  // status.json's updated_unix after each publication
  std::vector<int64_t> files;    // ...and its files_tracked
  seams_.run_agent = [&](const AgentConfig& c, std::stop_token, const AgentRunHooks& hooks) {
    auto publish = [&](int64_t files_tracked) {
      AgentStatus s;
      s.files_tracked = files_tracked;
      hooks.publish_status(s);
      AgentStatus read;
      EXPECT_TRUE(StatusFromJson(Slurp(c.state_dir + "/status.json"), &read).ok());
      updated.push_back(read.updated_unix);
      files.push_back(read.files_tracked);
    };
    publish(1);  // t = 0: a change from the initial status
    clock_.AdvanceBy(std::chrono::seconds(5));
    publish(1);  // t = 5: unchanged, not rewritten
    clock_.AdvanceBy(std::chrono::seconds(5));
    publish(2);  // t = 10: changed, written
    clock_.AdvanceBy(std::chrono::seconds(59));
    publish(2);  // t = 69: 59 s after the last write
    clock_.AdvanceBy(std::chrono::seconds(1));
    publish(2);  // t = 70: a minute after it, rewritten
    clock_.AdvanceBy(std::chrono::milliseconds(-120000));
    publish(2);  // the clock went back: rewritten
    return 0;
  };
  ASSERT_EQ(Run({"start", "--foreground", "--url", "http://127.0.0.1:9/api/v1/write", "--state-dir",
                 state(), "--device", "d", "--config-dir", tmp_ / "claude"}),
            kExitOk)
      << err_.str();
  const int64_t t0 = 1767225600;  // the fake clock's start
  EXPECT_EQ(updated, (std::vector<int64_t>{t0, t0, t0 + 10, t0 + 10, t0 + 70, t0 - 50}));
  EXPECT_EQ(files, (std::vector<int64_t>{1, 1, 2, 2, 2, 2}));
}

TEST_F(AgentCliTest, ForegroundRunStatusAndStopBySignal) {
  FakeEngine engine;
  seams_.run_agent = [&](const AgentConfig& c, std::stop_token s, const AgentRunHooks& h) {
    return engine.Run(c, s, h);
  };
  StopSignals signals;  // not installed: Deliver() stands in for SIGTERM
  seams_.signals = &signals;
  commands_.installed = {"notify-send"};
  env_.Set("CCMON_AGENT_SHARDZ", "3");                      // misspelt: logged, not read
  env_.Set("CCMON_AGENT_HEADER", "X-Scope-OrgID: team-a");  // not from the environment
  env_.Set("CCMON_AGENT_SHARDS", "2");                      // read: not logged
  env_.Set("CCMON_AGENT_BULK_START", "off");                // read (by the engine): not logged
  std::ostringstream fg_out, fg_err;
  int fg_code = -1;
  std::thread fg([&] {
    fg_code =
        RunAgentCli({"start", "--foreground", "--url", "http://127.0.0.1:9/api/v1/write",
                     "--state-dir", state(), "--device", "dev-x", "--config-dir", tmp_ / "claude"},
                    &env_, fg_out, fg_err, seams_);
  });
  engine.running.get_future().wait();
  EXPECT_EQ(engine.seen.device, "dev-x");
  EXPECT_EQ(engine.seen.config_dirs, std::vector<std::string>{tmp_ / "claude"});

  ASSERT_EQ(Run({"status", "--json", "--state-dir", state()}), kExitOk) << err_.str();
  const std::string json = out_.str();
  for (const char* field :
       {"\"running\":true", "\"files_tracked\":12", "\"bytes_behind\":345", "\"outbox_requests\":2",
        "\"last_push_unix\":1795690000", "\"last_push_status\":\"http 503\"", "\"version\":\""})
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  ASSERT_EQ(Run({"status", "--state-dir", state()}), kExitOk);
  EXPECT_NE(out_.str().find("files tracked   12"), std::string::npos) << out_.str();
  // Three failures in a row: one desktop notification.
  ASSERT_EQ(commands_.Started().size(), 1u);
  EXPECT_EQ(commands_.Started()[0][0], "notify-send");
  // A second agent on the same state dir is refused.
  EXPECT_EQ(Run({"start", "--foreground", "--url", "http://h/", "--state-dir", state()}),
            kExitFailure);
  EXPECT_NE(err_.str().find("another ccmon-agent"), std::string::npos) << err_.str();
  // reset refuses while it runs.
  EXPECT_EQ(Run({"reset", "--state-dir", state()}), kExitFailure);
  EXPECT_NE(err_.str().find("stop it first"), std::string::npos);

  EXPECT_TRUE(signals.Deliver(SIGTERM));
  fg.join();
  EXPECT_EQ(fg_code, kExitOk) << fg_err.str();
  EXPECT_EQ(Run({"status", "--state-dir", state()}), kExitNotRunning);
  const std::string log = Slurp(state() + "/agent.log");
  EXPECT_NE(log.find("msg=\"agent started\""), std::string::npos) << log;
  EXPECT_NE(log.find("level=warn msg=\"environment variable not read: no such setting, or not "
                     "one taken from the environment\" variable=CCMON_AGENT_SHARDZ"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("variable=CCMON_AGENT_HEADER"), std::string::npos) << log;
  EXPECT_EQ(log.find("variable=CCMON_AGENT_SHARDS"), std::string::npos) << log;
  EXPECT_EQ(log.find("variable=CCMON_AGENT_BULK_START"), std::string::npos) << log;
  EXPECT_NE(log.find("level=error msg=\"push failed\""), std::string::npos);
  EXPECT_NE(log.find("msg=\"agent stopped\" exit_status=0"), std::string::npos) << log;
  struct stat st;
  ASSERT_EQ(::stat(state().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // logs and logs --errors.
  ASSERT_EQ(Run({"logs", "--state-dir", state()}), kExitOk);
  EXPECT_EQ(out_.str(), log);
  ASSERT_EQ(Run({"logs", "--errors", "--state-dir", state()}), kExitOk);
  EXPECT_EQ(out_.str().find("agent started"), std::string::npos);
  EXPECT_NE(out_.str().find("push failed"), std::string::npos);
}

TEST_F(AgentCliTest, ForegroundFailuresSayWhy) {
  seams_.run_agent = [](const AgentConfig&, std::stop_token, const AgentRunHooks&) { return 0; };
  // No URL.
  EXPECT_EQ(Run({"start", "--foreground", "--state-dir", state()}), kExitUsage);
  EXPECT_NE(err_.str().find("--url"), std::string::npos);
  // A state dir below a regular file cannot be created.
  testing_util::WriteFile(tmp_ / "file", "x");
  EXPECT_EQ(Run({"start", "--foreground", "--url", "http://h/", "--state-dir", tmp_ / "file/s"}),
            kExitFailure);
  EXPECT_NE(err_.str().find("state directory"), std::string::npos) << err_.str();
  // An engine that fails: its status is the exit status.
  seams_.run_agent = [](const AgentConfig&, std::stop_token, const AgentRunHooks& h) {
    h.log->Error("cannot open the store");
    return 1;
  };
  EXPECT_EQ(Run({"start", "--foreground", "--url", "http://h/", "--state-dir", state()}),
            kExitFailure);
}

TEST_F(AgentCliTest, ForegroundReportsReadinessThroughThePipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  seams_.ready_fd = fds[1];
  seams_.run_agent = [](const AgentConfig&, std::stop_token, const AgentRunHooks& h) {
    h.ready();
    h.ready();  // once is what counts
    return 0;
  };
  EXPECT_EQ(Run({"start", "--foreground", "--url", "http://h/", "--state-dir", state()}), kExitOk);
  char buf[16] = {};
  EXPECT_EQ(::read(fds[0], buf, sizeof buf), 2);
  EXPECT_STREQ(buf, "ok");
  ::close(fds[0]);

  ASSERT_EQ(::pipe(fds), 0);
  seams_.ready_fd = fds[1];
  EXPECT_EQ(Run({"start", "--foreground", "--state-dir", state()}), kExitUsage);  // no URL
  char why[256] = {};
  EXPECT_GT(::read(fds[0], why, sizeof why - 1), 0);
  EXPECT_NE(std::string(why).find("--url"), std::string::npos) << why;
  ::close(fds[0]);
}

// An engine that fails before it is up (its --listen port taken, its state unreadable) is not
// reported as started: the background `start` hears the first error it logged (it used to say
// "started" while the agent was already gone).
TEST_F(AgentCliTest, EngineThatFailsBeforeReadyIsReportedNotStarted) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  seams_.ready_fd = fds[1];
  seams_.run_agent = [](const AgentConfig&, std::stop_token, const AgentRunHooks& h) {
    h.log->Info("opening");
    h.log->Error("cannot listen",
                 {{"listen", "127.0.0.1:9"}, {"error", "listen on 127.0.0.1:9: address in use"}});
    h.log->Error("a later error");
    return 1;
  };
  EXPECT_EQ(Run({"start", "--foreground", "--url", "http://h/", "--state-dir", state()}),
            kExitFailure);
  char why[256] = {};
  EXPECT_GT(::read(fds[0], why, sizeof why - 1), 0);
  EXPECT_STREQ(why, "cannot listen: listen on 127.0.0.1:9: address in use");
  ::close(fds[0]);
  // Still logged as before.
  EXPECT_NE(Slurp(state() + "/agent.log").find("level=error msg=\"cannot listen\""),
            std::string::npos);

  // Stopped (SIGTERM) before it was up, without an error: not reported as started either.
  ASSERT_EQ(::pipe(fds), 0);
  seams_.ready_fd = fds[1];
  seams_.run_agent = [](const AgentConfig&, std::stop_token, const AgentRunHooks&) { return 0; };
  EXPECT_EQ(Run({"start", "--foreground", "--url", "http://h/", "--state-dir", state()}), kExitOk);
  char stopped[256] = {};
  EXPECT_GT(::read(fds[0], stopped, sizeof stopped - 1), 0);
  EXPECT_STREQ(stopped, "it stopped before it was ready");
  ::close(fds[0]);
}

TEST_F(AgentCliTest, EngineThatIgnoresStopIsCutOff) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  StopSignals signals;
  seams_.signals = &signals;
  seams_.run_agent = [&](const AgentConfig&, std::stop_token, const AgentRunHooks&) {
    signals.Deliver(SIGTERM);
    while (true) std::this_thread::sleep_for(std::chrono::hours(1));  // never returns
    return 0;
  };
  seams_.log_to_err = true;  // the log lines reach the death test's standard error
  EXPECT_EXIT(RunAgentCli({"start", "--foreground", "--url", "http://h/", "--state-dir", state()},
                          &env_, std::cout, std::cerr, seams_),
              ::testing::ExitedWithCode(kExitFailure), "did not stop in time");
}

TEST_F(AgentCliTest, LogsFollowSeesAppendsAndRotation) {
  testing_util::MakeDirs(state());
  const std::string log = state() + "/agent.log";
  testing_util::WriteFile(log, "ts=1 level=info msg=first\nts=2 level=error msg=second\npart");
  StopSignals signals;
  seams_.signals = &signals;
  int waits = 0;
  clock_.set_on_wait([&](std::chrono::milliseconds) {
    ++waits;
    if (waits == 1) {
      std::ofstream(log, std::ios::app) << "ial\nts=3 level=warn msg=third\n";
    } else if (waits == 2) {
      ::rename(log.c_str(), (log + ".1").c_str());
      std::ofstream(log) << "ts=4 level=info msg=fourth\n";
    } else if (waits == 3) {
      std::ofstream(log, std::ios::app) << "ts=5 level=error msg=fifth\n";
    } else {
      signals.Deliver(SIGINT);
    }
  });
  ASSERT_EQ(Run({"logs", "--follow", "--state-dir", state()}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "ts=1 level=info msg=first\nts=2 level=error msg=second\npartial\n"
            "ts=3 level=warn msg=third\nts=4 level=info msg=fourth\nts=5 level=error msg=fifth\n");
  for (auto w : clock_.waits()) EXPECT_GE(w, std::chrono::milliseconds(100));  // no busy loop
}

TEST_F(AgentCliTest, LogsWithoutALog) {
  EXPECT_EQ(Run({"logs", "--state-dir", state()}), kExitFailure);
  EXPECT_NE(err_.str().find("no log yet"), std::string::npos);
}

TEST_F(AgentCliTest, TestExplainsTheAnswer) {
  const std::vector<std::string> base = {"test", "--url", "http://127.0.0.1:9090/api/v1/write"};
  ASSERT_EQ(Run(base), kExitOk);
  EXPECT_NE(out_.str().find("HTTP 204: ok"), std::string::npos) << out_.str();
  // The request is an empty remote-write 1.0 request.
  EXPECT_EQ(transport_.last.method, "POST");
  rw::WriteRequest decoded;
  ASSERT_TRUE(rw::Decode(transport_.last.body, 1 << 20, &decoded).ok());
  EXPECT_TRUE(decoded.series.empty());
  transport_.status = 401;
  EXPECT_EQ(Run(base), kExitFailure);
  EXPECT_NE(out_.str().find("authentication refused"), std::string::npos);
  transport_.status = 404;
  transport_.body = "remote write receiver needs to be enabled";
  EXPECT_EQ(Run(base), kExitFailure);
  EXPECT_NE(out_.str().find("--web.enable-remote-write-receiver"), std::string::npos);
  transport_.status = 503;
  EXPECT_EQ(Run(base), kExitFailure);
  transport_.error = Status::IoError("127.0.0.1: connect: Connection refused");
  EXPECT_EQ(Run(base), kExitFailure);
  EXPECT_NE(out_.str().find("network error: 127.0.0.1: connect: Connection refused"),
            std::string::npos);
  EXPECT_EQ(Run({"test"}), kExitUsage);  // no target configured
}

TEST_F(AgentCliTest, StatusOutputErrorsAreFailures) {
  testing_util::RefusingBuf refusing;
  std::ostream full(&refusing);
  EXPECT_EQ(RunAgentCli({"status", "--json", "--state-dir", state()}, &env_, full, err_, seams_),
            kExitFailure);
}

TEST_F(AgentCliTest, ResetRemovesOnlyAgentState) {
  EXPECT_EQ(Run({"reset", "--state-dir", state()}), kExitOk);
  EXPECT_NE(out_.str().find("no state directory"), std::string::npos);
  // A directory that is not the agent's is left alone.
  testing_util::WriteFile(tmp_ / "precious/thesis.tex", "x");
  EXPECT_EQ(Run({"reset", "--state-dir", tmp_ / "precious"}), kExitFailure);
  EXPECT_NE(err_.str().find("does not look like"), std::string::npos);
  EXPECT_EQ(Slurp(tmp_ / "precious/thesis.tex"), "x");
  // The agent's state (marker file) goes, and the config file with --config.
  seams_.run_agent = [](const AgentConfig&, std::stop_token, const AgentRunHooks&) { return 0; };
  ASSERT_EQ(Run({"start", "--foreground", "--url", "http://h/", "--state-dir", state()}), kExitOk);
  testing_util::WriteFile(state() + "/db/000001.sst", "data");
  ASSERT_EQ(Run({"setup", "--url", "http://h/"}), kExitOk);
  const std::string conf = tmp_ / "home/.config/ccmon/agent.conf";
  ASSERT_EQ(Run({"reset", "--config", "--state-dir", state()}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("removed the state directory " + state()), std::string::npos);
  EXPECT_NE(out_.str().find("removed the config file " + conf), std::string::npos);
  struct stat st;
  EXPECT_NE(::stat(state().c_str(), &st), 0);
  EXPECT_NE(::stat(conf.c_str(), &st), 0);
  // --config=FILE names the file.
  testing_util::WriteFile(tmp_ / "other.conf", "url = http://h/\n");
  ASSERT_EQ(Run({"reset", "--config=" + tmp_ / "other.conf", "--state-dir", state()}), kExitOk);
  EXPECT_NE(::stat((tmp_ / "other.conf").c_str(), &st), 0);
}

TEST_F(AgentCliTest, InstallServiceAndUninstall) {
  ASSERT_EQ(Run({"install-service", "--state-dir", "rel/state"}), kExitOk) << err_.str();
  const std::string unit = tmp_ / "home/.config/systemd/user/ccmon-agent.service";
  const std::string text = Slurp(unit);
  EXPECT_NE(text.find("ExecStart=\"/usr/local/bin/ccmon-agent\" \"start\" \"--foreground\" "
                      "\"--state-dir\" \"/"),
            std::string::npos)
      << text;
  EXPECT_NE(out_.str().find("systemctl --user enable --now ccmon-agent.service"),
            std::string::npos);
  EXPECT_NE(out_.str().find("systemctl is not in PATH"), std::string::npos);
  EXPECT_TRUE(commands_.Started().empty());  // never runs systemctl itself
  ASSERT_EQ(Run({"uninstall"}), kExitOk);
  EXPECT_NE(out_.str().find("removed " + unit), std::string::npos);
  struct stat st;
  EXPECT_NE(::stat(unit.c_str(), &st), 0);
  ASSERT_EQ(Run({"uninstall"}), kExitOk);
  EXPECT_NE(out_.str().find("nothing to remove"), std::string::npos);

  seams_.os = "Darwin";
  ASSERT_EQ(Run({"install-service"}), kExitOk);
  const std::string plist = tmp_ / "home/Library/LaunchAgents/dev.ccmon.agent.plist";
  EXPECT_NE(Slurp(plist).find("<string>/usr/local/bin/ccmon-agent</string>"), std::string::npos);
  EXPECT_NE(out_.str().find("launchctl load -w"), std::string::npos);
  ASSERT_EQ(Run({"uninstall"}), kExitOk);
  EXPECT_NE(::stat(plist.c_str(), &st), 0);

  seams_.os = "SunOS";
  EXPECT_EQ(Run({"install-service"}), kExitFailure);
}

}  // namespace
}  // namespace ccmon
