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
// store directly (a running one holds RocksDB's LOCK: "the gateway is running; use --server").
// Output, fixed for scripts: add and rotate print the agent's setup command, then the key alone
// on the last line of standard output; list prints a tab-separated table (NAME CREATED LAST_SEEN
// REVOKED, times RFC 3339 or "never", yes/no); revoke prints "revoked NAME".
// Limits (decimal integers within the range named in --help): --max-body-bytes,
// --max-decoded-bytes, --max-series-per-request, --max-labels-per-series,
// --max-label-name-bytes, --max-label-value-bytes, --max-future (a duration: 30s, 10m, 1h),
// --online-window (a duration, 1s..1d),
// --max-connections, --io-threads.
// Exit status: 0 ok (a serve stopped by SIGINT/SIGTERM); 1 failure (said on standard error);
// 2 usage error.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"
#include "gateway/gateway.h"
#include "tools/common/stop_signals.h"

namespace ccmon::gateway {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Parses `serve`'s flags (the arguments after "serve") into *config. kInvalidArgument with the
// message for the user (the flag, what it wants, what was given).
Status ParseServeFlags(const std::vector<std::string>& args, GatewayConfig* config);

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
    "The admin token comes from --admin-token-file, else $CCMON_GATEWAY_ADMIN_TOKEN.\n";

// An admin token from a file's or the environment's text: trailing white space dropped; then
// 1..4096 printable ASCII characters without spaces, else kInvalidArgument.
Status ParseAdminToken(std::string_view text, std::string* token);

}  // namespace ccmon::gateway
