// ccmon-gateway's command line, as functions of the arguments so that they are unit-tested
// in-process; main.cc only gathers the signals.
//
//   ccmon-gateway serve [--listen ADDR] [--data-dir DIR] [--allow-anonymous] [limits…]
//   ccmon-gateway --help | --version
// Limits (decimal integers within the range named in --help): --max-body-bytes,
// --max-decoded-bytes, --max-series-per-request, --max-labels-per-series,
// --max-label-name-bytes, --max-label-value-bytes, --max-future (a duration: 30s, 10m, 1h),
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

}  // namespace ccmon::gateway
