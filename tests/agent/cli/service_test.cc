#include "agent/cli/service.h"

#include <gtest/gtest.h>

#include "testing/mem_env.h"

namespace ccmon {
namespace {

TEST(ServiceTest, KindByUname) {
  ServiceKind k;
  ASSERT_TRUE(ServiceKindFor("Linux", &k));
  EXPECT_EQ(k, ServiceKind::kSystemdUser);
  ASSERT_TRUE(ServiceKindFor("Darwin", &k));
  EXPECT_EQ(k, ServiceKind::kLaunchAgent);
  EXPECT_FALSE(ServiceKindFor("FreeBSD", &k));
}

TEST(ServiceTest, Paths) {
  testing_util::MemEnv env;
  std::string p;
  EXPECT_FALSE(ServiceFilePath(&env, ServiceKind::kSystemdUser, &p).ok());
  EXPECT_FALSE(ServiceFilePath(&env, ServiceKind::kLaunchAgent, &p).ok());
  env.SetEnvVar("HOME", "/home/u");
  ASSERT_TRUE(ServiceFilePath(&env, ServiceKind::kSystemdUser, &p).ok());
  EXPECT_EQ(p, "/home/u/.config/systemd/user/ccmon-agent.service");
  env.SetEnvVar("XDG_CONFIG_HOME", "/x");
  ASSERT_TRUE(ServiceFilePath(&env, ServiceKind::kSystemdUser, &p).ok());
  EXPECT_EQ(p, "/x/systemd/user/ccmon-agent.service");
  ASSERT_TRUE(ServiceFilePath(&env, ServiceKind::kLaunchAgent, &p).ok());
  EXPECT_EQ(p, "/home/u/Library/LaunchAgents/dev.ccmon.agent.plist");
}

TEST(ServiceTest, SystemdUnitQuotesExecStart) {
  ServiceSpec spec;
  spec.exe = "/opt/my tools/ccmon-agent";
  spec.args = {"start", "--foreground", "--config", "/home/u/100%/a\"b\\c.conf"};
  const std::string unit = SystemdUserUnit(spec);
  EXPECT_NE(unit.find("ExecStart=\"/opt/my tools/ccmon-agent\" \"start\" \"--foreground\" "
                      "\"--config\" \"/home/u/100%%/a\\\"b\\\\c.conf\"\n"),
            std::string::npos)
      << unit;
  for (const char* line : {"[Unit]\n", "[Service]\n", "Restart=on-failure\n", "[Install]\n",
                           "WantedBy=default.target\n"})
    EXPECT_NE(unit.find(line), std::string::npos) << line;
}

TEST(ServiceTest, LaunchAgentPlistEscapesXml) {
  ServiceSpec spec;
  spec.exe = "/Users/a&b/bin/ccmon-agent";
  spec.args = {"start", "--foreground", "--state-dir", "/tmp/<x>"};
  spec.log_file = "/Users/a&b/state/agent.log";
  const std::string plist = LaunchAgentPlist(spec);
  EXPECT_NE(plist.find("<string>/Users/a&amp;b/bin/ccmon-agent</string>\n    "
                       "<string>start</string>\n    <string>--foreground</string>"),
            std::string::npos)
      << plist;
  EXPECT_NE(plist.find("<string>/tmp/&lt;x&gt;</string>"), std::string::npos);
  EXPECT_NE(plist.find("<key>Label</key>\n  <string>dev.ccmon.agent</string>"), std::string::npos);
  EXPECT_NE(plist.find("<key>StandardErrorPath</key>"), std::string::npos);
  EXPECT_EQ(plist.find("a&b"), std::string::npos);
  EXPECT_EQ(plist.substr(plist.size() - 9), "</plist>\n");
}

TEST(ServiceTest, Commands) {
  EXPECT_EQ(ServiceEnableCommands(ServiceKind::kSystemdUser, "x"),
            "systemctl --user daemon-reload\nsystemctl --user enable --now ccmon-agent.service\n");
  EXPECT_EQ(ServiceEnableCommands(ServiceKind::kLaunchAgent, "/p.plist"),
            "launchctl load -w '/p.plist'\n");
  EXPECT_NE(ServiceDisableCommands(ServiceKind::kSystemdUser, "x").find("disable --now"),
            std::string::npos);
}

}  // namespace
}  // namespace ccmon
