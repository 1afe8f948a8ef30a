// libFuzzer target for the gateway's write handler (src/gateway/ingest/write_handler.h) over the
// real series rules (GatewayStore on an in-memory KvStore). The first input byte picks the
// remote-write version (Content-Type) and whether the rest is sent as it is or snappy-compressed
// here (so that the fuzzer reaches the protobuf and the validation). For every input:
//  - the handler answers 204 or 400, never a 5xx (bad input is never the server's fault);
//  - a 204 leaves a store whose /metrics renders in both formats;
//  - the input sent twice (the second time its series are in the series cache,
//    gateway/ingest/series_cache.h) gets the same answers and leaves the same series and states
//    as with the cache off.
#include <snappy.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "gateway/ingest/write_handler.h"
#include "gateway/store/exposition.h"
#include "gateway/store/series_store.h"
#include "store/mem_store.h"

namespace {

class FixedClock : public ccmon::Clock {
 public:
  int64_t NowUnixMs() override { return 1767225600000; }
  std::chrono::steady_clock::time_point Now() override { return {}; }
  bool WaitFor(std::chrono::milliseconds, const std::stop_token&) override { return false; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ccmon;
  using namespace ccmon::gateway;
  if (size == 0) return 0;
  static FixedClock clock;
  auto kv = NewMemStore();
  std::unique_ptr<GatewayStore> store;
  if (!GatewayStore::Open(kv.get(), &store).ok()) std::abort();
  WriteHandlerOptions o;
  o.allow_anonymous = true;
  o.clock = &clock;
  o.limits.max_decoded_bytes = 1 << 20;
  o.limits.series_cache_entries = 64;  // small: evictions too
  WriteHandler handler(store.get(), o);
  // The same without the cache, to compare.
  auto plain_kv = NewMemStore();
  std::unique_ptr<GatewayStore> plain_store;
  if (!GatewayStore::Open(plain_kv.get(), &plain_store).ok()) std::abort();
  o.limits.series_cache_entries = 0;
  WriteHandler plain(plain_store.get(), o);

  ServerRequest r;
  r.method = "POST";
  r.target = "/api/v1/write";
  const bool v2 = data[0] & 1;
  r.headers.emplace_back("Content-Type",
                         v2 ? "application/x-protobuf;proto=io.prometheus.write.v2.Request"
                            : "application/x-protobuf");
  r.headers.emplace_back("Content-Encoding", "snappy");
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 2) {
    r.body = rest;
  } else {
    snappy::Compress(rest.data(), rest.size(), &r.body);
  }
  const ServerResponse resp = handler.Handle(r);
  const ServerResponse again = handler.Handle(r);
  const ServerResponse plain_resp = plain.Handle(r);
  const ServerResponse plain_again = plain.Handle(r);
  if (resp.status != plain_resp.status || again.status != plain_again.status ||
      resp.body != plain_resp.body || again.body != plain_again.body) {
    std::fprintf(stderr, "with the series cache: %u %u, without: %u %u\n", resp.status,
                 again.status, plain_resp.status, plain_again.status);
    std::abort();
  }
  std::map<std::string, std::pair<int64_t, uint64_t>> held, plain_held;
  const auto collect = [](const SeriesTable& t, auto* out) {
    for (const auto& [key, state] : t.series()) {
      (*out)[key] = {state.timestamp_ms, std::bit_cast<uint64_t>(state.value)};
    }
  };
  store->Read([&](const SeriesTable& t) { collect(t, &held); });
  plain_store->Read([&](const SeriesTable& t) { collect(t, &plain_held); });
  if (held != plain_held) {
    std::fprintf(stderr, "the series cache changed what is stored\n");
    std::abort();
  }
  if (resp.status != 204 && resp.status != 400) {
    std::fprintf(stderr, "status %u for fuzzed input: %s\n", resp.status, resp.body.c_str());
    std::abort();
  }
  if (resp.status == 204) {
    store->Read([](const SeriesTable& t) {
      std::string out;
      WriteSeriesExposition(t, ExpositionFormat::kText, nullptr, &out);
      WriteSeriesExposition(t, ExpositionFormat::kOpenMetrics, nullptr, &out);
    });
  }
  return 0;
}
