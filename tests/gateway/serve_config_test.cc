// serve's configuration from flags, CCMON_GATEWAY_* variables and a config file (MemEnv), and the
// whole-configuration checks (TLS both or neither, readable; tokens).
#include <gtest/gtest.h>

#include <mutex>
#include <sstream>
#include <stop_token>

#include "gateway/cli.h"
#include "testing/mem_env.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using testing_util::MemEnv;

class ServeConfigTest : public ::testing::Test {
 protected:
  Status Parse(const std::vector<std::string>& args) {
    config_ = GatewayConfig{};
    return ParseServeConfig(args, &env_, &config_);
  }
  MemEnv env_;
  GatewayConfig config_;
};

TEST_F(ServeConfigTest, EnvVarNames) {
  EXPECT_EQ(ServeSettingEnvVar("max-future"), "CCMON_GATEWAY_MAX_FUTURE");
  EXPECT_EQ(ServeSettingEnvVar("max-requests-per-device-per-second"),
            "CCMON_GATEWAY_MAX_REQUESTS_PER_DEVICE_PER_SECOND");
}

TEST_F(ServeConfigTest, FlagsOverEnvironmentOverFileOverDefaults) {
  env_.AddFile("/etc/gw.conf",
               "# the gateway\n"
               "listen = 0.0.0.0:9000\n"
               "\n"
               "data-dir = /var/lib/file\r\n"
               "max-future = 5m\n"
               "max-series-per-device = 100\n"
               "allow-anonymous = true\n"
               "io-threads = 3\n");
  env_.SetEnvVar("CCMON_GATEWAY_DATA_DIR", "/var/lib/env");
  env_.SetEnvVar("CCMON_GATEWAY_MAX_FUTURE", "7m");
  env_.SetEnvVar("CCMON_GATEWAY_ALLOW_ANONYMOUS", "false");
  env_.SetEnvVar("CCMON_GATEWAY_MAX_REQUESTS_PER_DEVICE_PER_SECOND", "20");
  Status s = Parse({"--config", "/etc/gw.conf", "--max-future", "9m", "--device-burst=50"});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(config_.listen, "0.0.0.0:9000");                      // file only
  EXPECT_EQ(config_.data_dir, "/var/lib/env");                    // env over file
  EXPECT_EQ(config_.limits.max_future, std::chrono::minutes(9));  // flag over env over file
  EXPECT_FALSE(config_.allow_anonymous);                          // env false over file true
  EXPECT_EQ(config_.limits.max_series_per_device, 100u);
  EXPECT_EQ(config_.limits.max_requests_per_device_per_second, 20u);
  EXPECT_EQ(config_.limits.device_burst, 50u);
  EXPECT_EQ(config_.io_threads, 3);
  EXPECT_EQ(config_.config_file, "/etc/gw.conf");
  // Defaults where nobody said anything.
  EXPECT_EQ(config_.max_connections, 1024u);
  EXPECT_EQ(config_.read_timeout, std::chrono::seconds(30));
}

// A config file's relative paths are relative to its directory ("~/" is $HOME), not to where the
// gateway runs; flags and variables are taken as given.
TEST_F(ServeConfigTest, RelativePathsInTheConfigFileAreRelativeToIt) {
  env_.AddFile("/etc/ccmon/gw.conf",
               "data-dir = data\n"
               "admin-token-file = secrets/admin\n"
               "metrics-token-file = ~/metrics\n"
               "listen = 127.0.0.1:0\n"
               "forward = http://up/api/v1/write\n"
               "forward-bearer-token-file = /abs/bearer\n");
  env_.AddFile("/etc/ccmon/secrets/admin", "admin-token\n");
  env_.AddFile("/home/g/metrics", "metrics-token\n");
  env_.AddFile("/abs/bearer", "bearer-token\n");
  env_.SetEnvVar("HOME", "/home/g");
  Status s = Parse({"--config", "/etc/ccmon/gw.conf"});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(config_.data_dir, "/etc/ccmon/data");
  EXPECT_EQ(config_.admin_token, "admin-token");
  EXPECT_EQ(config_.metrics_token, "metrics-token");
  EXPECT_EQ(config_.listen, "127.0.0.1:0");  // not a path
  ASSERT_TRUE(Parse({"--config", "/etc/ccmon/gw.conf", "--data-dir", "rel"}).ok());
  EXPECT_EQ(config_.data_dir, "rel");  // a flag: relative to where it is given
}

TEST_F(ServeConfigTest, TheConfigFileFromTheEnvironment) {
  env_.AddFile("/c.conf", "listen = 127.0.0.1:1\n");
  env_.SetEnvVar("CCMON_GATEWAY_CONFIG", "/c.conf");
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(config_.listen, "127.0.0.1:1");
  env_.AddFile("/d.conf", "listen = 127.0.0.1:2\n");
  ASSERT_TRUE(Parse({"--config=/d.conf"}).ok());  // the flag wins
  EXPECT_EQ(config_.listen, "127.0.0.1:2");
}

TEST_F(ServeConfigTest, FileErrorsNameTheLineAndTheKey) {
  env_.AddFile("/bad.conf", "listen = :1\n# ok\nmax-futur = 5m\n");
  Status s = Parse({"--config", "/bad.conf"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/bad.conf:3: unknown key 'max-futur'"), std::string::npos)
      << s.message();
  env_.AddFile("/twice.conf", "listen = :1\nlisten = :2\n");
  s = Parse({"--config", "/twice.conf"});
  EXPECT_NE(s.message().find("/twice.conf:2: key 'listen' given twice"), std::string::npos)
      << s.message();
  env_.AddFile("/noeq.conf", "listen :1\n");
  s = Parse({"--config", "/noeq.conf"});
  EXPECT_NE(s.message().find("/noeq.conf:1: expected 'key = value'"), std::string::npos)
      << s.message();
  env_.AddFile("/value.conf", "\nmax-connections = lots\n");
  s = Parse({"--config", "/value.conf"});
  EXPECT_NE(s.message().find("/value.conf:2: --max-connections wants an integer"),
            std::string::npos)
      << s.message();
  // Keys that exist only elsewhere: the config file itself, and the environment-only tokens.
  for (const char* key : {"config", "admin-token", "metrics-token"}) {
    env_.AddFile("/k.conf", std::string(key) + " = x\n");
    s = Parse({"--config", "/k.conf"});
    EXPECT_NE(s.message().find("unknown key '" + std::string(key) + "'"), std::string::npos)
        << s.message();
  }
  s = Parse({"--config", "/missing.conf"});
  EXPECT_NE(s.message().find("--config: cannot read /missing.conf"), std::string::npos)
      << s.message();
}

TEST_F(ServeConfigTest, EnvironmentErrorsNameTheVariable) {
  env_.SetEnvVar("CCMON_GATEWAY_MAX_BODY_BYTES", "-5");
  Status s = Parse({});
  EXPECT_NE(s.message().find("CCMON_GATEWAY_MAX_BODY_BYTES: --max-body-bytes wants"),
            std::string::npos)
      << s.message();
  env_.UnsetEnvVar("CCMON_GATEWAY_MAX_BODY_BYTES");
  env_.SetEnvVar("CCMON_GATEWAY_ALLOW_ANONYMOUS", "maybe");
  s = Parse({});
  EXPECT_NE(s.message().find("CCMON_GATEWAY_ALLOW_ANONYMOUS"), std::string::npos) << s.message();
}

TEST_F(ServeConfigTest, UnknownVariablesAreNamedAsWarnings) {
  env_.SetEnvVar("CCMON_GATEWAY_MAX_FUTUR", "5m");           // misspelt
  env_.SetEnvVar("CCMON_GATEWAY_SERVICE_HOST", "10.0.0.1");  // a Kubernetes service link
  env_.SetEnvVar("CCMON_GATEWAY_LISTEN", "127.0.0.1:1");
  env_.SetEnvVar("CCMON_GATEWAY_ADMIN_TOKEN", "admin-env-token");
  env_.SetEnvVar("CCMON_AGENT_SHARDS", "2");  // another program's
  Status s = Parse({});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(config_.listen, "127.0.0.1:1");
  EXPECT_EQ(config_.config_warnings,
            (std::vector<std::string>{
                "CCMON_GATEWAY_MAX_FUTUR is set but is no ccmon-gateway setting (ignored)",
                "CCMON_GATEWAY_SERVICE_HOST is set but is no ccmon-gateway setting (ignored)"}));
  env_.UnsetEnvVar("CCMON_GATEWAY_MAX_FUTUR");
  env_.UnsetEnvVar("CCMON_GATEWAY_SERVICE_HOST");
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_TRUE(config_.config_warnings.empty());
}

TEST_F(ServeConfigTest, TokensFromFilesAndTheEnvironment) {
  env_.AddFile("/admin", "admin-file-token\n");
  env_.AddFile("/metrics", "metrics-file-token\n");
  env_.SetEnvVar("CCMON_GATEWAY_ADMIN_TOKEN", "admin-env-token");
  env_.SetEnvVar("CCMON_GATEWAY_METRICS_TOKEN", "metrics-env-token");
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(config_.admin_token, "admin-env-token");
  EXPECT_EQ(config_.metrics_token, "metrics-env-token");
  ASSERT_TRUE(Parse({"--admin-token-file", "/admin", "--metrics-token-file", "/metrics"}).ok());
  EXPECT_EQ(config_.admin_token, "admin-file-token");
  EXPECT_EQ(config_.metrics_token, "metrics-file-token");
  // The tokens themselves are never flags (they would show in ps).
  EXPECT_FALSE(Parse({"--metrics-token", "x"}).ok());
  EXPECT_FALSE(Parse({"--metrics-token-file", "/nope"}).ok());
  env_.AddFile("/spaced", "two words\n");
  Status s = Parse({"--metrics-token-file", "/spaced"});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().find("two words"), std::string::npos) << "a token is never echoed";
  env_.SetEnvVar("CCMON_GATEWAY_METRICS_TOKEN", "bad token");
  s = Parse({});
  EXPECT_NE(s.message().find("CCMON_GATEWAY_METRICS_TOKEN"), std::string::npos) << s.message();
}

TEST_F(ServeConfigTest, TlsFilesBothOrNeitherAndReadable) {
  env_.AddFile("/cert.pem", "cert");
  env_.AddFile("/key.pem", "key");
  ASSERT_TRUE(Parse({"--tls-cert-file", "/cert.pem", "--tls-key-file", "/key.pem"}).ok());
  EXPECT_EQ(config_.tls_cert_file, "/cert.pem");
  EXPECT_EQ(config_.tls_key_file, "/key.pem");
  Status s = Parse({"--tls-cert-file", "/cert.pem"});
  EXPECT_NE(s.message().find("go together"), std::string::npos) << s.message();
  s = Parse({"--tls-key-file", "/key.pem"});
  EXPECT_NE(s.message().find("go together"), std::string::npos) << s.message();
  s = Parse({"--tls-cert-file", "/cert.pem", "--tls-key-file", "/missing.pem"});
  EXPECT_NE(s.message().find("--tls-key-file: cannot read /missing.pem"), std::string::npos)
      << s.message();
  ASSERT_TRUE(env_.SetReadable("/cert.pem", false).ok());
  s = Parse({"--tls-cert-file", "/cert.pem", "--tls-key-file", "/key.pem"});
  EXPECT_NE(s.message().find("--tls-cert-file: cannot read /cert.pem"), std::string::npos)
      << s.message();
  // Half in the file, half on the command line: checked as a whole.
  ASSERT_TRUE(env_.SetReadable("/cert.pem", true).ok());
  env_.AddFile("/tls.conf", "tls-cert-file = /cert.pem\n");
  EXPECT_TRUE(Parse({"--config", "/tls.conf", "--tls-key-file", "/key.pem"}).ok());
}

TEST_F(ServeConfigTest, NewLimitFlagsAndTheirRanges) {
  ASSERT_TRUE(Parse({"--max-pending-writes", "8", "--read-timeout", "2s", "--idle-timeout", "1m",
                     "--max-series-per-device", "0"})
                  .ok());
  EXPECT_EQ(config_.limits.max_pending_writes, 8u);
  EXPECT_EQ(config_.read_timeout, std::chrono::seconds(2));
  EXPECT_EQ(config_.idle_timeout, std::chrono::minutes(1));
  EXPECT_EQ(config_.limits.max_series_per_device, 0u);
  ASSERT_TRUE(Parse({"--series-cache-entries", "16777216"}).ok());
  EXPECT_EQ(config_.limits.series_cache_entries, 16777216u);
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"--read-timeout", "0s"},
                                             {"--read-timeout", "2h"},
                                             {"--max-requests-per-device-per-second", "1000001"},
                                             {"--max-pending-writes", "-1"},
                                             {"--series-cache-entries", "16777217"},
                                             {"--series-cache-entries", "-1"},
                                             {"--config"},
                                             {"--tls-cert-file", ""}}) {
    EXPECT_FALSE(Parse(bad).ok()) << bad[0];
  }
}

TEST(RunGatewayCliTest, AConfigErrorIsExit2WithTheMessage) {
  std::ostringstream out, err;
  EXPECT_EQ(RunGatewayCli({"serve", "--config", "/nonexistent/ccmon-gw.conf"}, out, err, nullptr),
            kExitUsage);
  EXPECT_NE(err.str().find("cannot read /nonexistent/ccmon-gw.conf"), std::string::npos)
      << err.str();
  err.str("");
  EXPECT_EQ(RunGatewayCli({"serve", "--tls-cert-file", "/etc/hostname"}, out, err, nullptr),
            kExitUsage);
  EXPECT_NE(err.str().find("go together"), std::string::npos) << err.str();
}

// TLS files the server cannot use are a configuration error (2), said in the log, whatever let
// them through (a file that vanished after the flags were checked, or a key of another cert).
TEST(RunGatewayTest, UnusableTlsFilesAreExit2) {
  testing_util::TempDir dir;
  GatewayConfig c;
  c.listen = "127.0.0.1:0";
  c.data_dir = dir.path() + "/data";
  c.tls_cert_file = dir.path() + "/missing.crt";
  c.tls_key_file = dir.path() + "/missing.key";
  std::mutex mu;
  std::string logged;
  std::stop_source stop;
  EXPECT_EQ(RunGateway(c, stop.get_token(),
                       [&](std::string_view l) {
                         std::lock_guard<std::mutex> lock(mu);
                         logged += std::string(l) + "\n";
                       }),
            2);
  EXPECT_NE(logged.find("msg=\"invalid server settings\""), std::string::npos) << logged;
  EXPECT_NE(logged.find("missing.crt"), std::string::npos) << logged;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CCMON_SANITIZED_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CCMON_SANITIZED_ALLOCATOR 1
#endif
#endif

TEST(RunGatewayTest, ASeriesCacheTheMachineCannotHoldIsAnErrorNotACrash) {
#ifdef CCMON_SANITIZED_ALLOCATOR
  GTEST_SKIP() << "a sanitizer's allocator reports a refused allocation and stops the process "
                  "instead of throwing std::bad_alloc";
#endif
  testing_util::TempDir dir;
  GatewayConfig c;
  c.listen = "127.0.0.1:0";
  c.data_dir = dir.path() + "/data";
  // Past what the flag allows (RunGateway's caller may be a test or an embedding program):
  // terabytes of slots, which the allocator refuses.
  c.limits.series_cache_entries = size_t(1) << 40;
  std::string logged;
  std::stop_source stop;
  EXPECT_EQ(
      RunGateway(c, stop.get_token(), [&](std::string_view l) { logged += std::string(l) + "\n"; }),
      1);
  EXPECT_NE(logged.find("cannot allocate the series cache: lower --series-cache-entries\" "
                        "entries=1099511627776"),
            std::string::npos)
      << logged;
}

}  // namespace
}  // namespace ccmon::gateway
