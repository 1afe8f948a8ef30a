#include "agent/cli/notify.h"

#include <gtest/gtest.h>

#include "agent/cli/test_env.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

using testing_util::FakeClock;
using testing_util::FakeCommandRunner;

AgentStatus Failing(int64_t n, std::string why = "http 503") {
  AgentStatus s;
  s.consecutive_push_failures = n;
  s.last_push_status = std::move(why);
  return s;
}

TEST(NotifyTest, ThreeFailuresThenAtMostOncePerFiveMinutes) {
  FakeClock clock;
  FakeCommandRunner runner;
  runner.installed = {"notify-send"};
  PushFailureNotifier n(&clock, &runner, "Linux");
  EXPECT_FALSE(n.Observe(Failing(1)));
  EXPECT_FALSE(n.Observe(Failing(2)));
  EXPECT_TRUE(n.Observe(Failing(3)));
  ASSERT_EQ(runner.Started().size(), 1u);
  EXPECT_EQ(runner.Started()[0], (std::vector<std::string>{"notify-send", "--app-name=ccmon-agent",
                                                           "--", "ccmon-agent: pushes failing",
                                                           "3 pushes failed in a row: http 503"}));
  clock.AdvanceBy(std::chrono::minutes(4));
  EXPECT_FALSE(n.Observe(Failing(50)));
  // A success and a new run of failures within the interval still waits for it.
  EXPECT_FALSE(n.Observe(Failing(0)));
  EXPECT_FALSE(n.Observe(Failing(3)));
  clock.AdvanceBy(std::chrono::seconds(59));
  EXPECT_FALSE(n.Observe(Failing(4)));
  clock.AdvanceBy(std::chrono::seconds(1));
  EXPECT_TRUE(n.Observe(Failing(5)));
  EXPECT_EQ(n.notifications(), 2);
}

TEST(NotifyTest, NothingWhenTheProgramIsMissingOrTheSystemUnknown) {
  FakeClock clock;
  FakeCommandRunner runner;
  PushFailureNotifier linux_without(&clock, &runner, "Linux");
  EXPECT_FALSE(linux_without.Observe(Failing(3)));
  PushFailureNotifier other(&clock, &runner, "FreeBSD");
  runner.installed = {"notify-send", "osascript"};
  EXPECT_FALSE(other.Observe(Failing(3)));
  EXPECT_TRUE(runner.Started().empty());
}

TEST(NotifyTest, StartFailureIsNotRetriedEverySecond) {
  FakeClock clock;
  FakeCommandRunner runner;
  runner.installed = {"notify-send"};
  runner.fail_start = true;
  PushFailureNotifier n(&clock, &runner, "Linux");
  EXPECT_FALSE(n.Observe(Failing(3)));
  clock.AdvanceBy(std::chrono::seconds(1));
  EXPECT_FALSE(n.Observe(Failing(4)));
  EXPECT_EQ(runner.Started().size(), 1u);
}

TEST(NotifyTest, MacOsUsesOsascriptWithAQuotedString) {
  auto argv = NotificationCommand("Darwin", "t", "say \"hi\" \\ \n\x1b[31m");
  ASSERT_TRUE(argv.has_value());
  ASSERT_EQ(argv->size(), 3u);
  EXPECT_EQ((*argv)[0], "osascript");
  EXPECT_EQ((*argv)[2], "display notification \"say \\\"hi\\\" \\\\   [31m\" with title \"t\"");
  EXPECT_FALSE(NotificationCommand("Windows", "t", "b").has_value());
}

TEST(NotifyTest, BodyIsBoundedAndPrintable) {
  auto argv = NotificationCommand("Linux", "t", std::string(5000, 'x') + "\n");
  ASSERT_TRUE(argv.has_value());
  EXPECT_LE(argv->back().size(), 300u);
  auto ctl = NotificationCommand("Linux", "t", "a\nb\x07");
  EXPECT_EQ(ctl->back(), "a b ");
}

TEST(NotifyTest, PosixRunnerFindsProgramsInPath) {
  testing_util::TempDir dir;
  testing_util::WriteFile(dir / "bin/tool", "#!/bin/sh\n");
  testing_util::WriteFile(dir / "bin/noexec", "");
  ASSERT_EQ(::chmod((dir / "bin/tool").c_str(), 0755), 0);
  testing_util::PosixEnvWithVars env({{"PATH", "/nonexistent:" + dir / "bin"}});
  PosixCommandRunner runner(&env);
  EXPECT_TRUE(runner.InPath("tool"));
  EXPECT_FALSE(runner.InPath("noexec"));
  EXPECT_FALSE(runner.InPath("bin"));  // a directory in another PATH entry's parent
  EXPECT_FALSE(runner.InPath("../bin/tool"));
  EXPECT_FALSE(runner.InPath("missing"));
  EXPECT_FALSE(runner.Start({"/nonexistent/program"}).ok());
  EXPECT_FALSE(runner.Start({}).ok());
}

}  // namespace
}  // namespace ccmon
