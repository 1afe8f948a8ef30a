// SeriesStore: where the gateway's received series live. The request handler
// (gateway/ingest/write_handler.h) sees only this interface; GatewayStore is the durable one, on
// a KvStore (RocksDB in production, docs/store-format.md "Gateway"), and handler tests use a fake.
//
// GatewayStore keeps a SeriesTable (series_table.h) in memory, loaded whole at Open, and writes
// each request's changes as ONE synced WriteBatch before changing the table: when Apply returns
// OK the request is durable and visible; when it fails nothing of it is applied, in memory or
// (as far as the KvStore contract goes) on disk, so the sender's retry starts from the same
// state. A batch that failed but still reached the disk (a WAL record whose fsync failed) can
// only show after a restart, whole: its samples are then duplicates of the retry.
//
// Threading: thread-safe. Applies are serialized (one writer at a time; the sync dominates);
// Read runs readers concurrently with each other, but not with an Apply's in-memory commit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "gateway/store/series_table.h"
#include "remote_write/write_request.h"
#include "store/kv_store.h"

namespace ccmon::gateway {

struct SeriesStoreStats {
  uint64_t series = 0;
  uint64_t families = 0;  // with metadata
  uint64_t store_bytes = 0;
};

// Keeps state derived from the received samples (the gateway's computed series) durable with
// them: GatewayStore::Apply calls Prepare with the request's series and the table as it was
// before the request, under Apply's lock (so calls never overlap), and the listener adds its own
// records to the request's WriteBatch. Exactly one of Committed (the batch is durable and the
// table changed) or Aborted (the write failed: nothing of it applies) follows each Prepare. A
// request that changes no series and no metadata is not written and calls nothing.
class ApplyListener {
 public:
  virtual ~ApplyListener() = default;
  virtual void Prepare(const std::vector<IncomingSeries>& series, const SeriesTable& before,
                       WriteBatch* batch) = 0;
  virtual void Committed() = 0;
  virtual void Aborted() = 0;
};

class SeriesStore {
 public:
  virtual ~SeriesStore() = default;
  // Applies one request's series and metadata (see SeriesTable for the rules). OK only once it
  // is durable; kIoError (or another error) when it could not be stored, and then nothing of it
  // is applied. *result is set in both cases (what was or would have been done).
  virtual Status Apply(const std::vector<IncomingSeries>& series,
                       const std::vector<rw::Metadata>& metadata, ApplyResult* result) = 0;
  // Calls `fn` with the current table, under a read lock: `fn` must not call Apply.
  virtual void Read(const std::function<void(const SeriesTable& table)>& fn) const = 0;
  virtual SeriesStoreStats Stats() const = 0;
};

// Key prefixes in the gateway's store (docs/store-format.md "Gateway").
inline constexpr char kSeriesKeyPrefix = 'S';
inline constexpr char kMetadataKeyPrefix = 'M';
inline constexpr std::string_view kFormatKey = "Vgateway";
inline constexpr std::string_view kFormatVersion = "1";

class GatewayStore final : public SeriesStore {
 public:
  // Loads every series and family from `kv` (borrowed; it must outlive the store). A store with
  // no keys is initialised (the format key, a synced write). Errors: kInvalidArgument for a
  // store that holds other keys but no gateway format key (an agent's state dir, say) or
  // another format version; kCorruption for a record that does not decode; the KvStore's
  // errors as they are.
  static Status Open(KvStore* kv, std::unique_ptr<GatewayStore>* out);

  Status Apply(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& metadata,
               ApplyResult* result) override;
  void Read(const std::function<void(const SeriesTable& table)>& fn) const override;
  SeriesStoreStats Stats() const override;
  // Sets the listener every later Apply calls (borrowed; nullptr: none), replacing any added
  // before. Call before the first Apply (not synchronized with it).
  void set_apply_listener(ApplyListener* listener) {
    listeners_.clear();
    if (listener != nullptr) listeners_.push_back(listener);
  }
  // Adds one more (borrowed): listeners are called in the order they were set or added, each
  // adding its records to the same batch (the computed series, the forward queues). Before the
  // first Apply.
  void add_apply_listener(ApplyListener* listener) { listeners_.push_back(listener); }

  // Record codecs (exposed for tests and tools).
  static std::string EncodeState(const SeriesState& state);
  static Status DecodeState(std::string_view value, SeriesState* state);
  static std::string EncodeMetadata(const rw::Metadata& m);
  static Status DecodeMetadata(std::string_view family, std::string_view value, rw::Metadata* m);

 private:
  explicit GatewayStore(KvStore* kv) : kv_(kv) {}

  KvStore* kv_;
  std::vector<ApplyListener*> listeners_;
  std::mutex apply_mu_;           // one Apply at a time: plan, write, commit
  mutable std::shared_mutex mu_;  // guards table_
  SeriesTable table_;
};

}  // namespace ccmon::gateway
