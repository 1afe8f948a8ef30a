// ThreadSanitizer suppressions built into ccmon_store_test (TSan reads them at start-up through
// this hook; other builds ignore the function).
//
// Debian's librocksdb is not instrumented: its memtable is a lock-free skip list published with
// atomics TSan cannot see, so a reader's memcmp of a key that a writer's memcpy put there looks
// like a race. Only reports whose interceptor (memcpy, memcmp, ...) is called from RocksDB, or
// with a RocksDB frame in the racing stacks, are suppressed: ccmon's own data never reaches
// RocksDB except as arguments it copies before returning.
extern "C" const char* __tsan_default_suppressions();
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:librocksdb.so\n"
         "race:librocksdb.so\n";
}
