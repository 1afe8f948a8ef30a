// ccmon_store_bench: what the agent's state store sustains on this machine.
//
//   ccmon_store_bench [DIR] [--batches N] [--sync-batches N] [--payload BYTES]
//
// In a fresh RocksDB directory under DIR (default /tmp; removed afterwards), measures:
//   - committed batches/s, sync off and on: each batch is what the agent writes per input batch,
//     one outbox entry (a --payload byte payload of 50 samples) plus five small keys (offsets,
//     counters), written and then Committed();
//   - Outbox::Open over the filled outbox (the recovery scan at start);
//   - Peek + Remove: draining one shard in batches of at most 2000 samples (Remove is a sync
//     write), as a sender does after a 2xx.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "store/kv_store.h"
#include "store/outbox.h"
#include "store/rocks_store.h"

namespace {

using ccmon::KvStore;
using ccmon::Outbox;
using ccmon::OutboxBatch;
using ccmon::OutboxOptions;
using ccmon::Status;
using ccmon::WriteBatch;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "ccmon_store_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// Writes `n` agent-shaped batches; returns the seconds taken.
double WriteBatches(KvStore* store, Outbox* outbox, int n, bool sync, const std::string& payload,
                    int64_t* seq) {
  auto start = Clock::now();
  for (int i = 0; i < n; ++i, ++*seq) {
    WriteBatch batch;
    for (int k = 0; k < 5; ++k) {
      batch.Put("f/file" + std::to_string(k), std::to_string(*seq));  // offsets and counters
    }
    Status s = outbox->Stage(0, 1767225600000 + *seq, 50, payload, &batch);
    if (!s.ok()) Die("stage", s);
    s = store->Write(batch, sync);
    if (!s.ok()) Die("write", s);
    outbox->Committed();
  }
  return Seconds(start);
}

}  // namespace

int main(int argc, char** argv) {
  std::string parent = "/tmp";
  int batches = 20000, sync_batches = 500;
  size_t payload_bytes = 2048;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batches" && i + 1 < argc) {
      batches = std::atoi(argv[++i]);
    } else if (a == "--sync-batches" && i + 1 < argc) {
      sync_batches = std::atoi(argv[++i]);
    } else if (a == "--payload" && i + 1 < argc) {
      payload_bytes = size_t(std::atol(argv[++i]));
    } else if (!a.empty() && a[0] != '-') {
      parent = a;
    } else {
      std::fprintf(stderr,
                   "usage: ccmon_store_bench [DIR] [--batches N] [--sync-batches N] "
                   "[--payload BYTES]\n");
      return 2;
    }
  }
  std::string tmpl = parent + "/ccmon_store_bench_XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl + "/state";
  std::string payload(payload_bytes, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = char((i * 131 + 7) % 251);

  std::unique_ptr<KvStore> store;
  if (Status s = ccmon::OpenRocksStore(dir, ccmon::RocksStoreOptions(), &store); !s.ok()) {
    Die("open", s);
  }
  OutboxOptions limits;
  limits.max_bytes = 0;
  limits.max_age = std::chrono::milliseconds(0);
  std::unique_ptr<Outbox> outbox;
  if (Status s = Outbox::Open(store.get(), limits, 1, &outbox); !s.ok()) Die("outbox", s);

  int64_t seq = 0;
  const double t_nosync = WriteBatches(store.get(), outbox.get(), batches, false, payload, &seq);
  const double t_sync = WriteBatches(store.get(), outbox.get(), sync_batches, true, payload, &seq);
  const uint64_t entries = outbox->Stats().total.entries;
  const uint64_t disk = store->ApproximateBytes();

  outbox.reset();
  auto open_start = Clock::now();
  if (Status s = Outbox::Open(store.get(), limits, 1, &outbox); !s.ok()) Die("reopen", s);
  const double t_open = Seconds(open_start);

  auto drain_start = Clock::now();
  uint64_t drained = 0, requests = 0, bytes = 0;
  for (;;) {
    OutboxBatch b;
    if (Status s = outbox->Peek(0, 2000, size_t(64) << 20, &b); !s.ok()) Die("peek", s);
    if (b.empty()) break;
    if (Status s = outbox->Remove(0, b.last_seq); !s.ok()) Die("remove", s);
    drained += b.entries;
    bytes += b.payload.size();
    ++requests;
  }
  const double t_drain = Seconds(drain_start);
  outbox.reset();
  store.reset();
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);

  std::printf("directory: %s (removed)\n", tmpl.c_str());
  std::printf("batch: 1 outbox entry (%zu B payload, 50 samples) + 5 small keys\n", payload_bytes);
  std::printf("%-34s %10d batches %8.2f s %10.0f batches/s\n", "commit, sync off", batches,
              t_nosync, batches / t_nosync);
  std::printf("%-34s %10d batches %8.2f s %10.0f batches/s\n", "commit, sync on", sync_batches,
              t_sync, sync_batches / t_sync);
  std::printf("%-34s %10llu entries %8.3f s   (store ~%.1f MiB on disk)\n",
              "Outbox::Open (recovery scan)", (unsigned long long)entries, t_open,
              double(disk) / (1 << 20));
  std::printf("%-34s %10llu entries %8.2f s %10.0f entries/s, %.0f requests/s, %.1f MiB/s\n",
              "Peek+Remove (<= 2000 samples)", (unsigned long long)drained, t_drain,
              double(drained) / t_drain, double(requests) / t_drain,
              double(bytes) / (1 << 20) / t_drain);
  return drained == entries ? 0 : 1;
}
