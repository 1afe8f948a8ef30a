// gateway_fill: writes DEVICES x SERIES agent-shaped series (claude_* names with a `device`,
// `model`, `project` and `type` label, and their metadata) straight into a stopped gateway's data
// dir, through GatewayStore, so that bench/gateway_bench.sh can time GET /metrics over exactly
// that many devices and series without 1000 device keys and 1000 senders.
//
// usage: gateway_fill DATA_DIR DEVICES SERIES_PER_DEVICE
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gateway/store/series_store.h"
#include "store/rocks_store.h"

namespace {

constexpr const char* kFamilies[] = {"claude_code_token_usage_tokens", "claude_code_cost_usage_usd",
                                     "claude_code_requests",           "claude_code_session_count",
                                     "claude_code_lines_of_code",      "claude_code_tool_calls"};
constexpr const char* kModels[] = {"claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"};
constexpr const char* kTypes[] = {"input", "output", "cacheRead", "cacheCreation", "web_search"};

}  // namespace

int main(int argc, char** argv) {
  using namespace ccmon;
  using namespace ccmon::gateway;
  if (argc != 4) {
    std::fprintf(stderr, "usage: gateway_fill DATA_DIR DEVICES SERIES_PER_DEVICE\n");
    return 2;
  }
  const int devices = std::atoi(argv[2]), per_device = std::atoi(argv[3]);
  std::unique_ptr<KvStore> kv;
  std::unique_ptr<GatewayStore> store;
  Status s = OpenRocksStore(argv[1], {}, &kv);
  if (s.ok()) s = GatewayStore::Open(kv.get(), &store);
  if (!s.ok()) {
    std::fprintf(stderr, "gateway_fill: %s\n", s.message().c_str());
    return 1;
  }
  std::vector<rw::Metadata> metadata;
  for (const char* f : kFamilies) {
    metadata.push_back(rw::Metadata{rw::MetricKind::kCounter, f, "bench family", ""});
  }
  const int64_t now_ms = 1'700'000'000'000;
  for (int d = 0; d < devices; ++d) {
    char device[32];
    std::snprintf(device, sizeof device, "device-%04d", d);
    std::vector<IncomingSeries> request;
    for (int i = 0; i < per_device; ++i) {
      const int f = i % 6, m = (i / 6) % 3, t = (i / 18) % 5, p = i / 90;
      Labels labels = {{"__name__", std::string(kFamilies[f]) + "_total"},
                       {"device", device},
                       {"model", kModels[m]},
                       {"project", "github.com/acme/project-" + std::to_string(p)},
                       {"type", kTypes[t]}};
      request.push_back(IncomingSeries{std::move(labels), {{now_ms, double(d * 1000 + i)}}});
    }
    ApplyResult result;
    s = store->Apply(request, d == 0 ? metadata : std::vector<rw::Metadata>{}, &result);
    if (!s.ok() || result.accepted != uint64_t(per_device)) {
      std::fprintf(stderr, "gateway_fill: device %d: %s (accepted %llu)\n", d, s.message().c_str(),
                   static_cast<unsigned long long>(result.accepted));
      return 1;
    }
  }
  std::printf("%d devices x %d series written to %s\n", devices, per_device, argv[1]);
  return 0;
}
