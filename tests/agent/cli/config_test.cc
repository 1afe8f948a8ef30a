#include "agent/cli/config.h"

#include <gtest/gtest.h>

#include "testing/mem_env.h"
#include "testing/temp_dir.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

using testing_util::MemEnv;

std::vector<SettingValue> Flags(std::vector<std::pair<std::string, std::string>> kv) {
  std::vector<SettingValue> out;
  for (auto& [k, v] : kv) out.push_back({k, v, "--" + k});
  return out;
}

Status Build(const std::vector<SettingValue>& flags, AgentConfig* cfg, MemEnv* env = nullptr) {
  MemEnv local;
  if (env == nullptr) {
    env = &local;
    env->SetEnvVar("HOME", "/home/u");
  }
  ConfigLayers layers;
  layers.flags = flags;
  return BuildAgentConfig(layers, env, "host1", cfg);
}

std::string BuildError(std::vector<std::pair<std::string, std::string>> kv) {
  AgentConfig cfg;
  Status s = Build(Flags(std::move(kv)), &cfg);
  EXPECT_FALSE(s.ok());
  return s.message();
}

TEST(AgentConfigTest, Defaults) {
  AgentConfig cfg;
  ASSERT_TRUE(Build({}, &cfg).ok());
  EXPECT_EQ(cfg.device, "host1");
  EXPECT_EQ(cfg.state_dir, "/home/u/.local/state/ccmon/agent");
  EXPECT_EQ(cfg.watch, AgentWatchMode::kInotify);
  EXPECT_EQ(cfg.resend_interval, std::chrono::seconds(15));
  EXPECT_EQ(cfg.max_sample_age, std::chrono::seconds(3600));
  EXPECT_EQ(cfg.max_samples_per_send, 2000u);
  EXPECT_EQ(cfg.shards, 1u);
  EXPECT_FALSE(cfg.backfill);
  EXPECT_EQ(cfg.label_options.max_projects, 100u);
  EXPECT_TRUE(cfg.url.empty());
}

TEST(AgentConfigTest, XdgStateHomeWinsOverHomeButOnlyWhenAbsolute) {
  MemEnv env;
  env.SetEnvVar("HOME", "/home/u");
  env.SetEnvVar("XDG_STATE_HOME", "/xdg/state");
  AgentConfig cfg;
  ASSERT_TRUE(Build({}, &cfg, &env).ok());
  EXPECT_EQ(cfg.state_dir, "/xdg/state/ccmon/agent");
  env.SetEnvVar("XDG_STATE_HOME", "relative/state");  // invalid per the XDG spec: ignored
  ASSERT_TRUE(Build({}, &cfg, &env).ok());
  EXPECT_EQ(cfg.state_dir, "/home/u/.local/state/ccmon/agent");
  std::string path;
  env.SetEnvVar("XDG_CONFIG_HOME", "/xdg/config");
  ASSERT_TRUE(DefaultConfigFilePath(&env, &path).ok());
  EXPECT_EQ(path, "/xdg/config/ccmon/agent.conf");
}

TEST(AgentConfigTest, NoHomeNoStateDirIsAnErrorUnlessGiven) {
  MemEnv env;
  AgentConfig cfg;
  Status s = Build({}, &cfg, &env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--state-dir"), std::string::npos) << s.message();
  EXPECT_TRUE(Build(Flags({{"state-dir", "/s"}}), &cfg, &env).ok());
  EXPECT_EQ(cfg.state_dir, "/s");
}

TEST(AgentConfigTest, PrecedenceFlagsOverEnvOverFile) {
  MemEnv env;
  env.SetEnvVar("HOME", "/home/u");
  env.SetEnvVar("CCMON_AGENT_DEVICE", "from-env");
  env.SetEnvVar("CCMON_AGENT_SHARDS", "3");
  env.SetEnvVar("CCMON_AGENT_LABEL", "team=env, site=hel");
  ConfigLayers layers;
  ASSERT_TRUE(ParseConfigFile("device = from-file\nshards = 2\nmax-models = 7\nlabel = a=1\n"
                              "config-dir = /f1\nconfig-dir = /f2\n",
                              "/c/agent.conf", &layers.file)
                  .ok());
  layers.env = SettingsFromEnv(&env);
  layers.flags = Flags({{"device", "from-flag"}});
  AgentConfig cfg;
  ASSERT_TRUE(BuildAgentConfig(layers, &env, "host", &cfg).ok());
  EXPECT_EQ(cfg.device, "from-flag");           // flag > env > file
  EXPECT_EQ(cfg.shards, 3u);                    // env > file
  EXPECT_EQ(cfg.label_options.max_models, 7u);  // file > default
  EXPECT_EQ(cfg.config_dirs, (std::vector<std::string>{"/f1", "/f2"}));
  // A repeatable setting takes all its values from the highest layer that has any.
  ASSERT_EQ(cfg.labels.size(), 2u);
  EXPECT_EQ(cfg.labels[0], (std::pair<std::string, std::string>{"team", "env"}));
  EXPECT_EQ(cfg.labels[1], (std::pair<std::string, std::string>{"site", "hel"}));
}

TEST(AgentConfigTest, EnvironmentVariableNamesAndEmptyMeansUnset) {
  EXPECT_EQ(SettingEnvVar("max-samples-per-send"), "CCMON_AGENT_MAX_SAMPLES_PER_SEND");
  MemEnv env;
  env.SetEnvVar("CCMON_AGENT_URL", "");
  env.SetEnvVar("CCMON_AGENT_HEADER", "X-A: 1");  // header has no environment variable
  env.SetEnvVar("CCMON_AGENT_CONFIG_DIR", "/a,,/b");
  const std::vector<SettingValue> v = SettingsFromEnv(&env);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].value, "/a");
  EXPECT_EQ(v[1].value, "/b");
  EXPECT_EQ(v[0].origin, "CCMON_AGENT_CONFIG_DIR");
}

TEST(AgentConfigTest, ConfigFileFormat) {
  std::vector<SettingValue> v;
  ASSERT_TRUE(ParseConfigFile("# comment\n\n  url =  http://h:1/a?x=1#frag  \r\n"
                              "header = X-Scope-OrgID: a=b # not a comment\n",
                              "f", &v)
                  .ok());
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].value, "http://h:1/a?x=1#frag");
  EXPECT_EQ(v[0].origin, "f:3");
  EXPECT_EQ(v[1].value, "X-Scope-OrgID: a=b # not a comment");
}

TEST(AgentConfigTest, ConfigFileErrorsNameFileLineAndKey) {
  std::vector<SettingValue> v;
  Status s = ParseConfigFile("url = http://h/\n\nbogus_key = 1\n", "/c/agent.conf", &v);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "/c/agent.conf:3: unknown key 'bogus_key'");
  s = ParseConfigFile("url http://h/\n", "f", &v);
  EXPECT_EQ(s.message(), "f:1: expected 'key = value', got 'url http://h/'");
  s = ParseConfigFile("device = a\ndevice = b\n", "f", &v);
  EXPECT_EQ(s.message(), "f:2: key 'device' given twice");
  s = ParseConfigFile("device = a\x01b\n", "f", &v);
  EXPECT_FALSE(s.ok());
  s = ParseConfigFile("device = \xff\xfe\n", "f", &v);
  EXPECT_FALSE(s.ok());
  s = ParseConfigFile(std::string("device = a\0b\n", 13), "f", &v);
  EXPECT_FALSE(s.ok());
  // A hostile key is escaped in the message.
  s = ParseConfigFile("\x1b[2Jx = 1\n", "f", &v);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().find('\x1b'), std::string::npos);
}

TEST(AgentConfigTest, ConfigFileRoundTrip) {
  const auto flags = Flags({{"url", "http://h:9090/api/v1/write"},
                            {"key", "dk_0123456789abcdefXYZ"},
                            {"label", "a=1"},
                            {"label", "b=2"},
                            {"device", "d e v"}});
  std::vector<SettingValue> back;
  ASSERT_TRUE(ParseConfigFile(FormatConfigFile(flags), "f", &back).ok());
  AgentConfig a, b;
  ASSERT_TRUE(Build(flags, &a).ok());
  ASSERT_TRUE(Build(back, &b).ok());
  EXPECT_EQ(a.url, b.url);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(b.device, "d e v");
}

TEST(AgentConfigTest, NumbersAreStrictWithRanges) {
  EXPECT_EQ(BuildError({{"shards", "-1"}}), "--shards wants an integer from 1 to 64, got '-1'");
  BuildError({{"shards", "0"}});
  BuildError({{"shards", "65"}});
  BuildError({{"shards", " 5"}});
  BuildError({{"max-samples-per-send", "18446744073709551616"}});
  BuildError({{"max-samples-per-send", "1e3"}});
  BuildError({{"max-samples-per-send", "0x10"}});
  BuildError({{"outbox-max-bytes", "1000"}});
  BuildError({{"max-projects", "99999999999999999999999"}});
  AgentConfig cfg;
  ASSERT_TRUE(Build(Flags({{"max-samples-per-send", "1000000"}, {"shards", "64"}}), &cfg).ok());
  EXPECT_EQ(cfg.max_samples_per_send, 1000000u);
  // The message names the source: an environment variable or a config file line.
  MemEnv env;
  env.SetEnvVar("HOME", "/h");
  env.SetEnvVar("CCMON_AGENT_SHARDS", "lots");
  ConfigLayers layers;
  layers.env = SettingsFromEnv(&env);
  Status s = BuildAgentConfig(layers, &env, "h", &cfg);
  EXPECT_EQ(s.message(), "CCMON_AGENT_SHARDS wants an integer from 1 to 64, got 'lots'");
  layers.env.clear();
  ASSERT_TRUE(ParseConfigFile("\nshards = 100\n", "/c.conf", &layers.file).ok());
  s = BuildAgentConfig(layers, &env, "h", &cfg);
  EXPECT_EQ(s.message(), "/c.conf:2 wants an integer from 1 to 64, got '100'");
}

TEST(AgentConfigTest, Durations) {
  uint64_t ms = 0;
  ASSERT_TRUE(ParseDurationMs("x", "15s", 0, UINT64_MAX, &ms).ok());
  EXPECT_EQ(ms, 15000u);
  ASSERT_TRUE(ParseDurationMs("x", "2d", 0, UINT64_MAX, &ms).ok());
  EXPECT_EQ(ms, 2u * 86400000u);
  ASSERT_TRUE(ParseDurationMs("x", "250ms", 0, UINT64_MAX, &ms).ok());
  EXPECT_EQ(ms, 250u);
  for (const char* bad : {"", "15", "s", "-5s", "+5s", "1.5s", "5 s", "5S", "5sec", "1h30m",
                          "9999999999999d", "999999999999999999999s"})
    EXPECT_FALSE(ParseDurationMs("x", bad, 0, UINT64_MAX, &ms).ok()) << bad;
  EXPECT_EQ(FormatDurationMs(15000), "15s");
  EXPECT_EQ(FormatDurationMs(3600000), "1h");
  EXPECT_EQ(FormatDurationMs(1500), "1500ms");
  EXPECT_EQ(FormatDurationMs(7 * 86400000ull), "7d");

  AgentConfig cfg;
  ASSERT_TRUE(Build(Flags({{"resend-interval", "1m"},
                           {"batch-send-deadline", "250ms"},
                           {"max-sample-age", "2h"},
                           {"outbox-max-age", "1d"}}),
                    &cfg)
                  .ok());
  EXPECT_EQ(cfg.resend_interval, std::chrono::seconds(60));
  EXPECT_EQ(cfg.batch_send_deadline, std::chrono::milliseconds(250));
  EXPECT_EQ(cfg.max_sample_age, std::chrono::seconds(7200));
  EXPECT_EQ(cfg.outbox_max_age, std::chrono::seconds(86400));
  EXPECT_EQ(BuildError({{"resend-interval", "0s"}}),
            "--resend-interval wants a duration from 1s to 1h such as 500ms, 15s, 5m, 1h, 1d, "
            "got '0s'");
  BuildError({{"resend-interval", "1500ms"}});  // kept in whole seconds
  BuildError({{"resend-interval", "2h"}});
  BuildError({{"batch-send-deadline", "5ms"}});
  BuildError({{"rescan-interval", "1s"}});
}

TEST(AgentConfigTest, ChoicesAndBooleans) {
  AgentConfig cfg;
  ASSERT_TRUE(Build(Flags({{"watch", "poll"},
                           {"project-label", "hash"},
                           {"backfill", "true"},
                           {"insecure-skip-verify", "yes"}}),
                    &cfg)
                  .ok());
  EXPECT_EQ(cfg.watch, AgentWatchMode::kPoll);
  EXPECT_EQ(cfg.label_options.project_mode, ProjectLabelMode::kHash);
  EXPECT_TRUE(cfg.backfill);
  EXPECT_TRUE(cfg.insecure_skip_verify);
  EXPECT_EQ(BuildError({{"watch", "fanotify"}}),
            "--watch must be one of inotify, poll, got 'fanotify'");
  BuildError({{"backfill", "maybe"}});
  BuildError({{"device", ""}});
  BuildError({{"device", "a\nb"}});
  BuildError({{"device", std::string(2000, 'd')}});
  BuildError({{"device", "x"}, {"device", "y"}});
}

// A bad --listen is a usage error at start-up (exit 2), not a failure after the state dir was
// opened.
TEST(AgentConfigTest, ListenAddressIsCheckedUpFront) {
  AgentConfig cfg;
  ASSERT_TRUE(Build(Flags({{"listen", "127.0.0.1:9100"}}), &cfg).ok());
  EXPECT_EQ(cfg.listen, "127.0.0.1:9100");
  ASSERT_TRUE(Build(Flags({{"listen", "[::1]:0"}}), &cfg).ok());
  ASSERT_TRUE(Build(Flags({{"listen", ":9100"}}), &cfg).ok());
  EXPECT_EQ(BuildError({{"listen", "127.0.0.1:99999"}}),
            "--listen: listen address '127.0.0.1:99999': the port must be a number from 0 to "
            "65535");
  BuildError({{"listen", "127.0.0.1:-1"}});
  BuildError({{"listen", "127.0.0.1"}});
  BuildError({{"listen", "::1:9100"}});
  BuildError({{"listen", "[::1"}});
}

TEST(AgentConfigTest, StaticLabels) {
  std::pair<std::string, std::string> l;
  ASSERT_TRUE(ParseStaticLabel("team=data eng", &l).ok());
  EXPECT_EQ(l.second, "data eng");
  ASSERT_TRUE(ParseStaticLabel("env=a=b", &l).ok());
  EXPECT_EQ(l.second, "a=b");
  for (const char* bad :
       {"team", "=x", "1team=x", "te-am=x", "__name__=x", "__x=1", "device=x", "model=x",
        "project=x", "type=x", "tool=x", "le=1", "job=x", "t=", "t=a\tb", "t=\xff"})
    EXPECT_FALSE(ParseStaticLabel(bad, &l).ok()) << bad;
  EXPECT_FALSE(ParseStaticLabel("t=" + std::string(1025, 'v'), &l).ok());
  BuildError({{"label", "a=1"}, {"label", "a=2"}});
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 33; ++i) many.push_back({"label", "l" + std::to_string(i) + "=v"});
  EXPECT_NE(BuildError(many).find("at most 32"), std::string::npos);
}

TEST(AgentConfigTest, DeviceKeyIsCheckedAndNeverEchoed) {
  EXPECT_TRUE(ValidateDeviceKey("dk_0123456789abcdef").ok());
  const std::string secret = "dk_short";
  const std::string msg = BuildError({{"key", secret}});
  EXPECT_EQ(msg.find(secret), std::string::npos) << msg;
  for (const char* bad : {"0123456789abcdef0123", "dk_0123456789abcde!", "DK_0123456789abcdef"})
    EXPECT_FALSE(ValidateDeviceKey(bad).ok()) << bad;
  EXPECT_FALSE(ValidateDeviceKey("dk_" + std::string(257, 'a')).ok());
}

TEST(AgentConfigTest, TargetHeaders) {
  testing_util::TempDir dir;
  testing_util::WriteFile(dir / "token", "tok123\n");
  testing_util::WriteFile(dir / "pw", "secret\n");
  AgentConfig cfg;
  std::vector<HttpHeader> h;
  Env* env = Env::Default();
  EXPECT_NE(BuildTargetHeaders(env, cfg, &h).message().find("--url"), std::string::npos);
  cfg.url = "ftp://x/";
  EXPECT_FALSE(BuildTargetHeaders(env, cfg, &h).ok());
  cfg.url = "http://user:pw@h/";
  EXPECT_FALSE(BuildTargetHeaders(env, cfg, &h).ok());
  cfg.url = "http://127.0.0.1:9090/api/v1/write";
  ASSERT_TRUE(BuildTargetHeaders(env, cfg, &h).ok());
  EXPECT_TRUE(h.empty());

  cfg.key = "dk_0123456789abcdef";
  cfg.headers = {"X-Scope-OrgID: team-a"};
  ASSERT_TRUE(BuildTargetHeaders(env, cfg, &h).ok());
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0], (HttpHeader{"X-Scope-OrgID", "team-a"}));
  EXPECT_EQ(h[1], (HttpHeader{"Authorization", "Bearer dk_0123456789abcdef"}));

  cfg.bearer_token_file = dir / "token";  // two credentials
  EXPECT_FALSE(BuildTargetHeaders(env, cfg, &h).ok());
  cfg.bearer_token_file.clear();
  cfg.headers = {"authorization: Bearer x"};
  EXPECT_FALSE(BuildTargetHeaders(env, cfg, &h).ok());
  cfg.headers.clear();
  cfg.key.clear();
  cfg.basic_auth_user = "u";
  cfg.basic_auth_password_file = dir / "pw";
  ASSERT_TRUE(BuildTargetHeaders(env, cfg, &h).ok());
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].second, "Basic dTpzZWNyZXQ=");
  cfg.basic_auth_password_file = dir / "missing";
  EXPECT_FALSE(BuildTargetHeaders(env, cfg, &h).ok());
  cfg.basic_auth_password_file = dir.path();  // a directory
  EXPECT_FALSE(BuildTargetHeaders(env, cfg, &h).ok());
  cfg.basic_auth_user.clear();
  cfg.basic_auth_password_file.clear();
  cfg.client_cert_file = dir / "cert.pem";
  EXPECT_NE(BuildTargetHeaders(env, cfg, &h).message().find("go together"), std::string::npos);
}

TEST(AgentConfigTest, HeaderValuesAreNotEchoed) {
  const std::string msg = BuildError({{"header", "X-A: secret\x01value"}});
  EXPECT_EQ(msg.find("secret"), std::string::npos) << msg;
  BuildError({{"header", "no colon"}});
}

TEST(AgentConfigTest, EverySettingHasAUniqueNameAndHelp) {
  std::set<std::string> names;
  for (const SettingSpec& s : AgentSettings()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_FALSE(s.help.empty()) << s.name;
    EXPECT_EQ(FindSetting(s.name), &s);
  }
  EXPECT_EQ(FindSetting("nope"), nullptr);
}

TEST(ConfigTest, ResolveRelativePathsTouchesPathSettingsOnly) {
  std::vector<SettingValue> v = {{"state-dir", "st", "f:1"},      {"state-dir", "/abs", "f:2"},
                                 {"pricing", "~/p.json", "f:3"},  {"ca-file", "~", "f:4"},
                                 {"device", "rel", "f:5"},        {"config-dir", "a/b", "f:6"},
                                 {"no-such-setting", "x", "f:7"}, {"client-key-file", "~x", "f:8"}};
  ResolveRelativePaths("/etc/ccmon", "/home/u", &v);
  EXPECT_EQ(v[0].value, "/etc/ccmon/st");
  EXPECT_EQ(v[1].value, "/abs");
  EXPECT_EQ(v[2].value, "/home/u/p.json");
  EXPECT_EQ(v[3].value, "/home/u");
  EXPECT_EQ(v[4].value, "rel");
  EXPECT_EQ(v[5].value, "/etc/ccmon/a/b");
  EXPECT_EQ(v[6].value, "x");
  EXPECT_EQ(v[7].value, "/etc/ccmon/~x");  // only "~" and "~/" mean home
  std::vector<SettingValue> w = {{"state-dir", "st", "f:1"}, {"pricing", "~/p", "f:2"}};
  ResolveRelativePaths("/", "", &w);  // no HOME: "~/" is a relative path like any other
  EXPECT_EQ(w[0].value, "/st");
  EXPECT_EQ(w[1].value, "/~/p");
}

}  // namespace
}  // namespace ccmon
