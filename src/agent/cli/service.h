// install-service / uninstall: the per-user service definitions that run
// `ccmon-agent start --foreground` at login and restart it when it fails.
//   Linux: a systemd user unit, ~/.config/systemd/user/ccmon-agent.service
//          ($XDG_CONFIG_HOME/systemd/user/… when that is set);
//   macOS: a LaunchAgent, ~/Library/LaunchAgents/dev.ccmon.agent.plist.
// The writers are pure functions of a ServiceSpec (unit-tested for both systems whatever the
// host); the CLI picks one by uname at run time and never runs systemctl or launchctl itself:
// it prints the commands.
#pragma once

#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"

namespace ccmon {

struct ServiceSpec {
  std::string exe;                // absolute path of ccmon-agent
  std::vector<std::string> args;  // after the program: "start", "--foreground", …
  std::string log_file;           // macOS: where launchd sends standard output and error
};

enum class ServiceKind { kSystemdUser, kLaunchAgent };

inline constexpr const char kSystemdUnitName[] = "ccmon-agent.service";
inline constexpr const char kLaunchAgentLabel[] = "dev.ccmon.agent";

// The service kind for uname's sysname ("Linux", "Darwin"); false for other systems.
bool ServiceKindFor(const std::string& os, ServiceKind* out);
// Where the definition goes (see above). kNotFound when neither XDG_CONFIG_HOME nor HOME is set.
Status ServiceFilePath(Env* env, ServiceKind kind, std::string* out);

// A systemd user unit. ExecStart's words are quoted for systemd ("…" with \" \\ escaped, and
// % doubled as %% so no specifier is expanded), so paths with blanks or % work.
std::string SystemdUserUnit(const ServiceSpec& spec);
// A launchd property list (XML, & < > " ' escaped).
std::string LaunchAgentPlist(const ServiceSpec& spec);

// The commands a user runs after install-service / before uninstall, one per line.
std::string ServiceEnableCommands(ServiceKind kind, const std::string& path);
std::string ServiceDisableCommands(ServiceKind kind, const std::string& path);

}  // namespace ccmon
