// OpenRocksStore: the KvStore (store/kv_store.h) on RocksDB, for the agent's state directory.
//
// Durability: every Write goes through RocksDB's write-ahead log; sync = true fsyncs it before
// returning. After a crash, recovery replays the log up to the last intact record
// (kPointInTimeRecovery): a batch is recovered whole or not at all.
//
// Memory is small and bounded, sized for a desktop agent (docs/store-format.md, "Store"): a
// block cache of `block_cache_bytes` that also holds index and filter blocks, and at most two
// memtables of `write_buffer_bytes`.
//
// Errors at open (each names the directory):
//   - another process (or another store in this process) has it open: kIoError
//     "state dir DIR is in use by another process (RocksDB LOCK)";
//   - DIR holds other files and no RocksDB database: kInvalidArgument "state dir DIR is not a
//     RocksDB database ...", so a mistyped --state-dir cannot spray RocksDB files into a
//     home directory;
//   - damaged files (CURRENT, MANIFEST, tables): kCorruption "state dir DIR is corrupted: ...";
//   - cannot be created, read or written (permissions, read-only file system, full disk):
//     kIoError with RocksDB's reason.
//
// A full disk: a Write that fails returns kIoError ("state dir DIR: disk full: ...") and
// loses nothing written before it. RocksDB then stops accepting writes (its background error
// state; reads still work). How the store leaves that state depends on
// RocksStoreOptions::recover_by_reopening:
//   - true (the agent): every Write is refused (kIoError "... recovering from an earlier write
//     error ...") until the owner's Recover() succeeds. Recover() closes the database and opens
//     it again, once the directory's file system has 1 MiB free and no iterator of the store is
//     open; it fails (kIoError, saying which) until then. The
//     reopen replays the WAL: a batch whose Write failed but whose log record was complete comes
//     back (kv_store.h), so the owner reloads its memory from the store after a Recover(). A
//     reopen that fails leaves the store closed: Get, iterators and Write fail until a later
//     Recover() opens it.
//   - false (the gateway): the next Write reopens the database itself, under the same
//     conditions (room, no open iterator; otherwise that Write fails saying which). When the
//     WAL replay brought back nothing that had been reported failed (RocksDB publishes a write's
//     sequence number only when it succeeded, so the last sequence number is unchanged), the
//     store is as its owner knows it and the Write goes through. Otherwise the owner's memory no
//     longer matches the store: every later Write fails ("... restart to reload the state"),
//     reads go on, and a restart reloads. (Not DB::Resume(): RocksDB 7.8's can wait forever for
//     a flush that was scheduled before the error and started after it, docs/store-format.md.)
//
// Threading: the store is thread-safe (as every KvStore); every call shares one lock that only a
// reopen takes alone. Destroy iterators before the store.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/kv_store.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace ccmon {

struct RocksStoreOptions {
  // LRU cache of uncompressed blocks, index and filter blocks included (bounds read memory).
  size_t block_cache_bytes = size_t(4) << 20;
  // Size of one memtable; RocksDB keeps at most two (one being flushed). Also the WAL size at
  // which a flush is due, so it bounds the log replayed at start.
  size_t write_buffer_bytes = size_t(4) << 20;
  // Table files kept open at once (each holds a file descriptor); -1: all.
  int max_open_files = 64;
  // false: tables written by memtable flushes are not compressed (RocksDB's `compression` off),
  // only those compacted into the last level are (snappy, `bottommost_compression`). For an
  // owner that flushes often what is short-lived or incompressible (the gateway's log records,
  // soon deleted, and its states): the flushes' snappy was CPU for nothing.
  bool compress_flushes = true;
  // RocksDB's warnings and errors, one message at a time (no line end), from any of RocksDB's
  // threads, possibly at once; empty: dropped. RocksDB writes no LOG file into the directory:
  // Debian's RocksDB 7.8 is built with assertions, and aborts the process when it writes to its
  // LOG after a write there failed, which a full disk makes happen.
  std::function<void(std::string_view message)> log;
  // See "A full disk" above: true, Write refuses after a failed write until Recover() reopened
  // the database (the owner then reloads); false, Write reopens it itself when that brings back
  // no failed write, and refuses until a restart when it does.
  bool recover_by_reopening = false;
  // Tests only: the environment RocksDB runs on (a file system that fails on cue, background
  // jobs held back); borrowed, it must outlive the store. Null: RocksDB's default.
  rocksdb::Env* test_env = nullptr;
};

// Opens (creating it and its parents when missing, mode 0755) the RocksDB database in `dir`.
Status OpenRocksStore(const std::string& dir, const RocksStoreOptions& options,
                      std::unique_ptr<KvStore>* out);

}  // namespace ccmon
