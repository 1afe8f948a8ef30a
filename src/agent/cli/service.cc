#include "agent/cli/service.h"

#include "base/markup.h"

namespace ccmon {
namespace {

std::string SystemdWord(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '%') out += '%';
    out += c;
  }
  return out + "\"";
}

}  // namespace

bool ServiceKindFor(const std::string& os, ServiceKind* out) {
  if (os == "Linux") {
    *out = ServiceKind::kSystemdUser;
    return true;
  }
  if (os == "Darwin") {
    *out = ServiceKind::kLaunchAgent;
    return true;
  }
  return false;
}

Status ServiceFilePath(Env* env, ServiceKind kind, std::string* out) {
  std::optional<std::string> home = env->GetEnvVar("HOME");
  if (kind == ServiceKind::kSystemdUser) {
    std::optional<std::string> xdg = env->GetEnvVar("XDG_CONFIG_HOME");
    if (xdg && !xdg->empty() && xdg->front() == '/') {
      *out = *xdg + "/systemd/user/" + kSystemdUnitName;
      return Status::Ok();
    }
    if (!home || home->empty())
      return Status::NotFound("neither $XDG_CONFIG_HOME nor $HOME is set");
    *out = *home + "/.config/systemd/user/" + kSystemdUnitName;
    return Status::Ok();
  }
  if (!home || home->empty()) return Status::NotFound("$HOME is not set");
  *out = *home + "/Library/LaunchAgents/" + kLaunchAgentLabel + ".plist";
  return Status::Ok();
}

std::string SystemdUserUnit(const ServiceSpec& spec) {
  std::string exec = SystemdWord(spec.exe);
  for (const std::string& a : spec.args) exec += " " + SystemdWord(a);
  return "# Written by `ccmon-agent install-service`; removed by `ccmon-agent uninstall`.\n"
         "[Unit]\n"
         "Description=ccmon-agent: Claude Code usage and cost to Prometheus\n"
         "After=network-online.target\n"
         "Wants=network-online.target\n"
         "\n"
         "[Service]\n"
         "Type=simple\n"
         "ExecStart=" +
         exec +
         "\n"
         "Restart=on-failure\n"
         "RestartSec=10\n"
         "# SIGTERM stops the agent within 5 s, its state consistent.\n"
         "TimeoutStopSec=10\n"
         "\n"
         "[Install]\n"
         "WantedBy=default.target\n";
}

std::string LaunchAgentPlist(const ServiceSpec& spec) {
  std::string args = "    <string>" + EscapeMarkup(spec.exe) + "</string>\n";
  for (const std::string& a : spec.args) args += "    <string>" + EscapeMarkup(a) + "</string>\n";
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
      "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
      "<!-- Written by `ccmon-agent install-service`; removed by `ccmon-agent uninstall`. -->\n"
      "<plist version=\"1.0\">\n"
      "<dict>\n"
      "  <key>Label</key>\n"
      "  <string>" +
      std::string(kLaunchAgentLabel) +
      "</string>\n"
      "  <key>ProgramArguments</key>\n"
      "  <array>\n" +
      args +
      "  </array>\n"
      "  <key>RunAtLoad</key>\n"
      "  <true/>\n"
      "  <key>KeepAlive</key>\n"
      "  <dict>\n"
      "    <key>SuccessfulExit</key>\n"
      "    <false/>\n"
      "  </dict>\n";
  if (!spec.log_file.empty()) {
    out += "  <key>StandardOutPath</key>\n  <string>" + EscapeMarkup(spec.log_file) +
           "</string>\n  <key>StandardErrorPath</key>\n  <string>" + EscapeMarkup(spec.log_file) +
           "</string>\n";
  }
  return out + "</dict>\n</plist>\n";
}

std::string ServiceEnableCommands(ServiceKind kind, const std::string& path) {
  if (kind == ServiceKind::kSystemdUser)
    return std::string("systemctl --user daemon-reload\nsystemctl --user enable --now ") +
           kSystemdUnitName + "\n";
  return "launchctl load -w '" + path + "'\n";
}

std::string ServiceDisableCommands(ServiceKind kind, const std::string& path) {
  if (kind == ServiceKind::kSystemdUser)
    return std::string("systemctl --user disable --now ") + kSystemdUnitName +
           "\nsystemctl --user daemon-reload\n";
  return "launchctl unload -w '" + path + "'\n";
}

}  // namespace ccmon
