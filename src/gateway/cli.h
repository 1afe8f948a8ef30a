// ccmon-gateway's command line, as functions of the arguments so that they are unit-tested
// in-process; main.cc only gathers the signals.
//
//   ccmon-gateway serve [--listen ADDR] [--data-dir DIR] [--allow-anonymous] [limits…]
//   ccmon-gateway device add NAME   (--server URL [--admin-token-file F] | --data-dir DIR [--url
//   U]) ccmon-gateway device list       (the same) ccmon-gateway device revoke NAME (the same)
//   ccmon-gateway device rotate NAME (the same)
//   ccmon-gateway --help | --version
// serve takes --admin-token-file F (else $CCMON_GATEWAY_ADMIN_TOKEN; neither: the admin API
// answers 403). device … --server sends the admin token of --admin-token-file (else
// $CCMON_GATEWAY_ADMIN_TOKEN) to the admin API; device … --data-dir works on a stopped gateway's
// store directly (a running one holds RocksDB's LOCK: "the gateway is running; use --server";
// another offline command holds it for a moment, so the LOCK is waited for up to 3 s first).
// Output, fixed for scripts: add and rotate print the agent's setup command, then the key alone
// on the last line of standard output; list prints a tab-separated table (NAME CREATED LAST_SEEN
// REVOKED, times RFC 3339 or "never", yes/no); revoke prints "revoked NAME".
// Limits (decimal integers within the range named in --help): --max-body-bytes,
// --max-decoded-bytes, --max-series-per-request, --max-labels-per-series,
// --max-label-name-bytes, --max-label-value-bytes, --max-future (a duration: 30s, 10m, 1h),
// --max-series-per-device, --max-requests-per-device-per-second, --device-burst,
// --max-pending-writes, --max-connections, --io-threads, --read-timeout, --idle-timeout,
// --online-window (a duration, 1s..1d).
// Security: --metrics-token-file F (else $CCMON_GATEWAY_METRICS_TOKEN) guards /metrics and
// /api/metrics; --tls-cert-file F --tls-key-file F (both or neither) serve HTTPS.
// Settings come from flags, CCMON_GATEWAY_<NAME> variables and a config file (--config FILE,
// else $CCMON_GATEWAY_CONFIG; the format of tools/common/config_file.h, keys = the flags'
// names), in that order of precedence over the defaults; see ParseServeConfig.
// Exit status: 0 ok (a serve stopped by SIGINT/SIGTERM); 1 failure (said on standard error);
// 2 usage error.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "gateway/gateway.h"
#include "tools/common/stop_signals.h"

namespace ccmon::gateway {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Parses `serve`'s flags (the arguments after "serve") into *config, the flags alone (no
// environment, no config file; --config is ignored). kInvalidArgument with the message for the
// user (the flag, what it wants, what was given).
Status ParseServeFlags(const std::vector<std::string>& args, GatewayConfig* config);

// The whole serve configuration over *config (the defaults): the config file (--config, else
// $CCMON_GATEWAY_CONFIG; none by default), then the CCMON_GATEWAY_* variables of `env`, then the
// flags, each overriding the one before. Every setting is a flag (--max-future 5m), a file key
// (max-future = 5m) and a variable (CCMON_GATEWAY_MAX_FUTURE=5m); a switch (allow-anonymous) is
// true|false in the file and the environment. Only in the environment: the tokens themselves,
// CCMON_GATEWAY_ADMIN_TOKEN and CCMON_GATEWAY_METRICS_TOKEN (a *-token-file of the same or a
// higher layer wins over them). `config` is not a file key. Files (config, tokens, TLS) are read
// or checked through `env`. Errors (kInvalidArgument, exit status 2) name their source: the flag,
// the variable, or "FILE:LINE" with the key (an unknown key, a key given twice, a bad value).
// The destinations (forward and its forward-* settings, in order) come from the flags when they
// name any, else from the file; a CCMON_GATEWAY_FORWARD… variable is an error. A set
// CCMON_GATEWAY_* variable that is no setting goes into config->config_warnings (RunGateway
// logs them). Then the whole is checked: TLS cert and key both or neither, both readable. (A
// certificate and key that do not match are found when the server starts: RunGateway returns 2.)
Status ParseServeConfig(const std::vector<std::string>& args, Env* env, GatewayConfig* config);

// "max-future" -> "CCMON_GATEWAY_MAX_FUTURE".
std::string ServeSettingEnvVar(std::string_view name);

// Runs one command line (the arguments after the program name). `signals` (may be null: nothing
// stops a serve) ends a serve cleanly on SIGINT/SIGTERM/SIGHUP.
int RunGatewayCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  StopSignals* signals);

const char* GatewayVersion();

// `device …` (the arguments after "device").
int RunDeviceCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
inline constexpr char kDeviceUsage[] =
    "usage: ccmon-gateway device add NAME    (--server URL [--admin-token-file F] | --data-dir DIR"
    " [--url WRITE_URL])\n"
    "       ccmon-gateway device list        (--server URL [--admin-token-file F] | --data-dir "
    "DIR)\n"
    "       ccmon-gateway device revoke NAME (the same)\n"
    "       ccmon-gateway device rotate NAME (the same)\n"
    "The admin token comes from --admin-token-file, else $CCMON_GATEWAY_ADMIN_TOKEN.\n"
    "With --server https://…, --ca-file F trusts the PEM CAs in F instead of the system's\n"
    "(a gateway with a private or self-signed certificate).\n";

// An admin token from a file's or the environment's text: trailing white space dropped; then
// 1..4096 printable ASCII characters without spaces, else kInvalidArgument.
Status ParseAdminToken(std::string_view text, std::string* token);

}  // namespace ccmon::gateway
