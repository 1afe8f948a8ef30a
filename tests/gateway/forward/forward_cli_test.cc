// The --forward flags of `ccmon-gateway serve`: per-destination headers and credentials apply to
// the --forward before them; every misuse is a usage error that names the flag.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "gateway/cli.h"
#include "testing/mem_env.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using testing_util::TempDir;

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir / name;
  std::ofstream(path) << text;
  return path;
}

TEST(ForwardFlagsTest, CredentialsApplyToThePrecedingForward) {
  TempDir dir;
  const std::string token = WriteFile(dir, "token", "s3cret\n");
  const std::string password = WriteFile(dir, "pw", "hunter2\n");
  GatewayConfig c;
  Status s = ParseServeFlags({"--forward",
                              "http://prom:9090/api/v1/write",
                              "--forward-header",
                              "X-Scope-OrgID: t1",
                              "--forward-header=X-Extra: 2",
                              "--forward-bearer-token-file",
                              token,
                              "--forward",
                              "https://vm:8428/api/v1/write",
                              "--forward-basic-auth-user",
                              "alice",
                              "--forward-basic-auth-password-file",
                              password,
                              "--forward-queue-max-bytes",
                              "1048576",
                              "--forward-queue-max-age",
                              "2h",
                              "--forward-shards",
                              "3",
                              "--forward-max-samples-per-send",
                              "500",
                              "--forward-batch-send-deadline",
                              "1s"},
                             &c);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(c.forward.size(), 2u);
  EXPECT_EQ(c.forward[0].url, "http://prom:9090/api/v1/write");
  EXPECT_EQ(c.forward[0].headers,
            (std::vector<HttpHeader>{
                {"X-Scope-OrgID", "t1"}, {"X-Extra", "2"}, {"Authorization", "Bearer s3cret"}}));
  EXPECT_EQ(c.forward[1].url, "https://vm:8428/api/v1/write");
  // base64("alice:hunter2")
  EXPECT_EQ(c.forward[1].headers,
            (std::vector<HttpHeader>{{"Authorization", "Basic YWxpY2U6aHVudGVyMg=="}}));
  EXPECT_EQ(c.forward_queue_max_bytes, 1048576u);
  EXPECT_EQ(c.forward_queue_max_age, std::chrono::hours(2));
  EXPECT_EQ(c.forward_shards, 3u);
  EXPECT_EQ(c.forward_max_samples_per_send, 500u);
  EXPECT_EQ(c.forward_batch_send_deadline, std::chrono::seconds(1));
}

TEST(ForwardFlagsTest, DefaultsForwardNowhere) {
  GatewayConfig c;
  ASSERT_TRUE(ParseServeFlags({}, &c).ok());
  EXPECT_TRUE(c.forward.empty());
  EXPECT_EQ(c.forward_queue_max_bytes, uint64_t(1) << 30);
  EXPECT_EQ(c.forward_queue_max_age, std::chrono::hours(24 * 7));
  EXPECT_EQ(c.forward_shards, 4u);
}

TEST(ForwardFlagsTest, MisuseIsRefusedNamingTheFlag) {
  TempDir dir;
  const std::string token = WriteFile(dir, "token", "t\n");
  const std::string pw = WriteFile(dir, "pw", "p\n");
  const std::string u = "http://h:1/api/v1/write";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const Case cases[] = {
      {{"--forward-header", "A: b"}, "give --forward URL first"},
      {{"--forward-bearer-token-file", token, "--forward", u}, "give --forward URL first"},
      {{"--forward", u, "--forward", u}, "given twice"},
      {{"--forward", "prom:9090"}, "http:// or https://"},
      {{"--forward", ""}, "wants a URL"},
      {{"--forward", "http://h:99999/w"}, "remote-write receiver"},
      {{"--forward", "http://bad host/w"}, "remote-write receiver"},
      {{"--forward"}, "wants a value"},
      {{"--forward", u, "--forward-header", "no colon"}, "--forward http://h:1/api/v1/write"},
      {{"--forward", u, "--forward-header", "A: b", "--forward-header", "a: c"}, "--forward"},
      {{"--forward", u, "--forward-bearer-token-file", token, "--forward-bearer-token-file", token},
       "given twice for --forward"},
      {{"--forward", u, "--forward-bearer-token-file", dir / "missing"}, "--forward"},
      {{"--forward", u, "--forward-bearer-token-file", token, "--forward-basic-auth-user", "a",
        "--forward-basic-auth-password-file", pw},
       "--forward"},
      {{"--forward", u, "--forward-basic-auth-user", "a"}, "--forward"},
      {{"--forward-shards", "0"}, "forward-shards"},
      {{"--forward-shards", "65"}, "forward-shards"},
      {{"--forward-max-samples-per-send", "0"}, "forward-max-samples-per-send"},
      {{"--forward-queue-max-bytes", "-1"}, "forward-queue-max-bytes"},
      {{"--forward-queue-max-age", "soon"}, "forward-queue-max-age"},
      {{"--forward-shards", "2", "--forward-shards", "3"}, "given twice"},
  };
  for (const Case& c : cases) {
    GatewayConfig config;
    Status s = ParseServeFlags(c.args, &config);
    std::string joined;
    for (const std::string& a : c.args) joined += a + " ";
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << joined;
    EXPECT_NE(s.message().find(c.says), std::string::npos) << joined << "-> " << s.message();
    EXPECT_TRUE(config.forward.empty()) << joined;  // nothing applied
  }
}

TEST(ForwardFlagsTest, CredentialsInTheUrlAreRefusedNotEchoed) {
  GatewayConfig c;
  Status s = ParseServeFlags({"--forward", "http://bob:pa55@h:1/w"}, &c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().find("pa55"), std::string::npos) << s.message();
}

TEST(ForwardFlagsTest, QueueSettingsAreConfigKeysAndVariables) {
  testing_util::MemEnv env;
  env.AddFile("/etc/gw.conf", "forward-shards = 2\nforward-queue-max-age = 1d\n");
  env.AddFile("/etc/token", "tok\n");
  env.SetEnvVar("CCMON_GATEWAY_FORWARD_QUEUE_MAX_AGE", "3h");
  GatewayConfig c;
  Status s = ParseServeConfig({"--config", "/etc/gw.conf", "--forward", "http://p:9090/w",
                               "--forward-bearer-token-file", "/etc/token"},
                              &env, &c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.forward_shards, 2u);
  EXPECT_EQ(c.forward_queue_max_age, std::chrono::hours(3));
  ASSERT_EQ(c.forward.size(), 1u);
  EXPECT_EQ(c.forward[0].url, "http://p:9090/w");
  EXPECT_EQ(c.forward[0].headers, (std::vector<HttpHeader>{{"Authorization", "Bearer tok"}}));
}

TEST(ForwardFlagsTest, DestinationsFromTheConfigFileInTheirOrder) {
  testing_util::MemEnv env;
  env.AddFile("/etc/token", "tok\n");
  env.AddFile("/etc/pw", "secret\n");
  env.AddFile("/etc/gw.conf",
              "forward = http://mimir:8080/api/v1/push\n"
              "forward-header = X-Scope-OrgID: team-a\n"
              "forward-bearer-token-file = /etc/token\n"
              "forward-label = cluster=eu\n"
              "forward-label = replica=gw-1\n"
              "# the second destination\n"
              "forward = http://vm:8428/api/v1/write\n"
              "forward-basic-auth-user = bob\n"
              "forward-basic-auth-password-file = /etc/pw\n"
              "forward-shards = 2\n");
  GatewayConfig c;
  Status s = ParseServeConfig({"--config", "/etc/gw.conf"}, &env, &c);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(c.forward.size(), 2u);
  EXPECT_EQ(c.forward[0].url, "http://mimir:8080/api/v1/push");
  EXPECT_EQ(c.forward[0].headers, (std::vector<HttpHeader>{{"X-Scope-OrgID", "team-a"},
                                                           {"Authorization", "Bearer tok"}}));
  EXPECT_EQ(c.forward[0].labels, (Labels{{"cluster", "eu"}, {"replica", "gw-1"}}));
  EXPECT_EQ(c.forward[1].url, "http://vm:8428/api/v1/write");
  EXPECT_EQ(c.forward[1].headers,
            (std::vector<HttpHeader>{{"Authorization", "Basic Ym9iOnNlY3JldA=="}}));
  EXPECT_TRUE(c.forward[1].labels.empty());
  EXPECT_EQ(c.forward_shards, 2u);

  // Any destination on the command line replaces the file's whole: a header of the file's
  // destination never travels to the command line's.
  GatewayConfig flags_win;
  s = ParseServeConfig({"--config", "/etc/gw.conf", "--forward", "http://p:9090/w"}, &env,
                       &flags_win);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(flags_win.forward.size(), 1u);
  EXPECT_EQ(flags_win.forward[0].url, "http://p:9090/w");
  EXPECT_TRUE(flags_win.forward[0].headers.empty());
  EXPECT_EQ(flags_win.forward_shards, 2u);  // not a destination setting: the file's still

  // A file's mistakes name its line.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"forward-label = cluster=eu\n",
       "/etc/bad.conf:1: --forward-label applies to the --forward "
       "before it"},
      {"forward = http://h:1/w\nforward = http://h:1/w\n",
       "/etc/bad.conf:2: --forward "
       "http://h:1/w given twice"},
      {"forward = ftp://h/w\n", "/etc/bad.conf:1: --forward wants the http:// or https://"},
      {"forward = http://h:1/w\nforward-label = device=x\n",
       "/etc/bad.conf:2: --forward "
       "http://h:1/w: --forward-label"},
      {"\nforward = http://h:1/w\nforward-bearer-token-file = /nope\n",
       "/etc/bad.conf:2: --forward http://h:1/w: "},
  };
  for (const auto& [text, says] : bad) {
    env.AddFile("/etc/bad.conf", text);
    GatewayConfig config;
    s = ParseServeConfig({"--config", "/etc/bad.conf"}, &env, &config);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
  }
}

TEST(ForwardFlagsTest, DestinationsInTheEnvironmentAreRefusedNotIgnored) {
  // One variable cannot say which destination a header belongs to; ignoring
  // CCMON_GATEWAY_FORWARD would forward nothing without a word.
  for (const char* var :
       {"CCMON_GATEWAY_FORWARD", "CCMON_GATEWAY_FORWARD_HEADER", "CCMON_GATEWAY_FORWARD_LABEL",
        "CCMON_GATEWAY_FORWARD_BEARER_TOKEN_FILE"}) {
    testing_util::MemEnv env;
    env.SetEnvVar(var, "http://h:1/w");
    GatewayConfig c;
    Status s = ParseServeConfig({"--forward", "http://p:9090/w"}, &env, &c);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << var;
    EXPECT_NE(s.message().find(std::string(var) + ": forwarding is set on the command line"),
              std::string::npos)
        << s.message();
  }
}

TEST(ForwardFlagsTest, HelpDocumentsTheForwardFlags) {
  std::ostringstream out, err;
  EXPECT_EQ(RunGatewayCli({"serve", "--help"}, out, err, nullptr), kExitOk);
  for (const char* flag :
       {"--forward URL", "--forward-header", "--forward-bearer-token-file",
        "--forward-basic-auth-user", "--forward-basic-auth-password-file",
        "--forward-queue-max-bytes", "--forward-queue-max-age", "--forward-shards"}) {
    EXPECT_NE(out.str().find(flag), std::string::npos) << flag;
  }
}

TEST(ForwardFlagsTest, ForwardLabelsApplyToThePrecedingForward) {
  GatewayConfig c;
  Status s = ParseServeFlags({"--forward", "http://mimir:8080/api/v1/push", "--forward-label",
                              "cluster=eu", "--forward-label=replica=gw-1", "--forward-label",
                              "note=a=b", "--forward", "http://vm:8428/w"},
                             &c);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(c.forward.size(), 2u);
  EXPECT_EQ(c.forward[0].labels, (Labels{{"cluster", "eu"}, {"replica", "gw-1"}, {"note", "a=b"}}));
  EXPECT_TRUE(c.forward[1].labels.empty());

  const std::string u = "http://h:1/w";
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--forward-label", "cluster=eu"}, "give --forward URL first"},
      {{"--forward", u, "--forward-label", "cluster"}, "NAME=VALUE"},
      {{"--forward", u, "--forward-label", "device=x"}, "not replaceable"},
      {{"--forward", u, "--forward-label", "__name__=x"}, "reserved"},
      {{"--forward", u, "--forward-label", "__replica__=x"}, "reserved"},
      {{"--forward", u, "--forward-label", "bad-name=x"}, "not a label name"},
      {{"--forward", u, "--forward-label", "cluster="}, "non-empty"},
      {{"--forward", u, "--forward-label", "a=1", "--forward-label", "a=2"}, "given twice"},
  };
  for (const auto& [args, says] : bad) {
    GatewayConfig config;
    s = ParseServeFlags(args, &config);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << args.back();
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
    if (args[0] == "--forward") {
      EXPECT_NE(s.message().find("--forward http://h:1/w: --forward-label"), std::string::npos)
          << s.message();
    }
  }
  // In a file too, a label needs the forward line before it.
  testing_util::MemEnv env;
  env.AddFile("/etc/gw.conf", "forward-label = cluster=eu\n");
  GatewayConfig from_file;
  s = ParseServeConfig({"--config", "/etc/gw.conf"}, &env, &from_file);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("/etc/gw.conf:1: "), std::string::npos) << s.message();
  std::ostringstream out, err;
  EXPECT_EQ(RunGatewayCli({"serve", "--help"}, out, err, nullptr), kExitOk);
  EXPECT_NE(out.str().find("--forward-label NAME=VALUE"), std::string::npos);
}

}  // namespace
}  // namespace ccmon::gateway
