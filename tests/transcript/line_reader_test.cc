// LineReader and the file seam (docs/accounting.md A3-A5).
#include "transcript/line_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "testing/fault_env.h"
#include "testing/mem_env.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

using testing_util::TempDir;
using testing_util::WriteFile;

// An in-memory file that returns its bytes in tiny chunks (cycling through `pattern`) and can
// fail with an I/O error once `fail_at` bytes have been returned.
class ChunkedFile : public SequentialFile {
 public:
  explicit ChunkedFile(std::string data, std::vector<size_t> pattern = {1, 2, 3, 4, 5, 6, 7},
                       std::optional<size_t> fail_at = std::nullopt)
      : data_(std::move(data)), pattern_(std::move(pattern)), fail_at_(fail_at) {}

  Status Read(char* buf, size_t n, size_t* got) override {
    ++reads_;
    if (fail_at_ && pos_ >= *fail_at_)
      return Status::IoError("fake.jsonl: read: Input/output error");
    size_t k = std::min({n, pattern_[call_++ % pattern_.size()], data_.size() - pos_});
    if (fail_at_) k = std::min(k, *fail_at_ - pos_);
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    *got = k;
    return Status::Ok();
  }
  size_t reads() const { return reads_; }

 private:
  std::string data_;
  std::vector<size_t> pattern_;
  std::optional<size_t> fail_at_;
  size_t pos_ = 0, call_ = 0, reads_ = 0;
};

struct Item {
  LineReader::Result result;
  std::string line;
  uint64_t consumed;
  bool operator==(const Item&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Item& i) {
  return os << "{" << int(i.result) << " '" << i.line << "' @" << i.consumed << "}";
}

// Reads until kEnd or kError; checks the padding promise on every line.
std::vector<Item> ReadAll(LineReader& r, size_t* max_readable = nullptr) {
  std::vector<Item> out;
  for (int guard = 0; guard < 1000000; ++guard) {
    std::string_view line;
    size_t readable = 0;
    LineReader::Result res = r.Next(&line, &readable);
    if (res == LineReader::Result::kLine) {
      EXPECT_GE(readable, line.size() + LineReader::kPadding);
      if (max_readable) *max_readable = std::max(*max_readable, readable);
      out.push_back({res, std::string(line), r.consumed_offset()});
    } else {
      out.push_back({res, "", r.consumed_offset()});
    }
    if (res == LineReader::Result::kEnd || res == LineReader::Result::kError) break;
  }
  return out;
}

std::vector<std::string> Lines(const std::vector<Item>& items) {
  std::vector<std::string> out;
  for (const auto& i : items)
    if (i.result == LineReader::Result::kLine) out.push_back(i.line);
  return out;
}

LineReader::Options Opts(size_t chunk, size_t max_line = size_t(64) << 20) {
  LineReader::Options o;
  o.chunk_bytes = chunk;
  o.max_line_bytes = max_line;
  return o;
}

TEST(LineReader, A3_OnlyNewlineEndsALine) {
  const std::string data =
      "a\rb\n"
      "x\xe2\x80\xa8y\n"
      "p\xe2\x80\xa9q\xc2\x85r\n"
      "\r\n"
      "\n"
      "last\n";
  for (size_t chunk : {1, 3, 8, 4096}) {
    ChunkedFile f(data);
    LineReader r(&f, 0, Opts(chunk));
    auto items = ReadAll(r);
    EXPECT_EQ(Lines(items), (std::vector<std::string>{"a\rb", "x\xe2\x80\xa8y",
                                                      "p\xe2\x80\xa9q\xc2\x85r", "\r", "", "last"}))
        << "chunk " << chunk;
    EXPECT_EQ(items.back().result, LineReader::Result::kEnd);
    EXPECT_EQ(r.consumed_offset(), data.size());
    EXPECT_EQ(r.pending_bytes(), 0u);
  }
}

TEST(LineReader, A3_LinesAssembleAcrossTinyChunks) {
  // Many lines of varied lengths, read in 1..7-byte pieces with several buffer sizes.
  std::string data;
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i) {
    std::string l = testing_util::Line(testing_util::Msg{}).substr(0, size_t(i * 37) % 450);
    want.push_back(l);
    data += l + "\n";
  }
  for (std::vector<size_t> pattern :
       {std::vector<size_t>{1}, std::vector<size_t>{1, 2, 3, 4, 5, 6, 7},
        std::vector<size_t>{7, 1, 5}, std::vector<size_t>{4096}}) {
    for (size_t chunk : {1, 2, 7, 64, 1024}) {
      ChunkedFile f(data, pattern);
      LineReader r(&f, 0, Opts(chunk));
      auto items = ReadAll(r);
      EXPECT_EQ(Lines(items), want) << "chunk " << chunk << " pattern[0] " << pattern[0];
      EXPECT_EQ(r.consumed_offset(), data.size());
      EXPECT_EQ(r.pending_bytes(), 0u);
    }
  }
}

TEST(LineReader, A4_FinalLineWithoutNewlineIsNotConsumed) {
  const std::string data = "l1\nline two\npartial {\"type\":";
  ChunkedFile f(data);
  LineReader r(&f, 0, Opts(4));
  auto items = ReadAll(r);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], (Item{LineReader::Result::kLine, "l1", 3}));
  EXPECT_EQ(items[1], (Item{LineReader::Result::kLine, "line two", 12}));
  EXPECT_EQ(items[2].result, LineReader::Result::kEnd);
  EXPECT_EQ(r.consumed_offset(), 12u);
  EXPECT_EQ(r.pending_bytes(), data.size() - 12);
  EXPECT_TRUE(r.status().ok());
  // The tailer re-reads from consumed_offset once the line is complete.
  ChunkedFile grown(data.substr(12) + "\"user\"}\n");
  LineReader again(&grown, r.consumed_offset(), Opts(4));
  auto more = ReadAll(again);
  ASSERT_EQ(more.size(), 2u);
  EXPECT_EQ(more[0].line, "partial {\"type\":\"user\"}");
  EXPECT_EQ(again.consumed_offset(), data.size() + 8);
  EXPECT_EQ(again.pending_bytes(), 0u);
}

TEST(LineReader, A4_EmptyFileAndOnlyPartialLine) {
  ChunkedFile empty("");
  LineReader r(&empty, 0, Opts(16));
  auto items = ReadAll(r);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].result, LineReader::Result::kEnd);
  EXPECT_EQ(r.pending_bytes(), 0u);
  EXPECT_EQ(r.consumed_offset(), 0u);

  ChunkedFile partial("no newline at all");
  LineReader p(&partial, 0, Opts(16));
  items = ReadAll(p);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(p.pending_bytes(), 17u);
  EXPECT_EQ(p.consumed_offset(), 0u);
}

TEST(LineReader, A4_StartOffsetIsTheResumePoint) {
  ChunkedFile f("ab\ncd\n");
  LineReader r(&f, 1000, Opts(8));
  auto items = ReadAll(r);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], (Item{LineReader::Result::kLine, "ab", 1003}));
  EXPECT_EQ(items[1], (Item{LineReader::Result::kLine, "cd", 1006}));
}

TEST(LineReader, A5_LinesOverTheCapAreSkipped) {
  const std::string data =
      "short\n" + std::string(25, 'x') + "\n" + "0123456789\n" + "01234567890\n" + "ok\n";
  for (size_t chunk : {1, 4, 16, 4096}) {
    ChunkedFile f(data);
    size_t max_readable = 0;
    LineReader r(&f, 0, Opts(chunk, /*max_line=*/10));
    auto items = ReadAll(r, &max_readable);
    ASSERT_EQ(items.size(), 6u) << "chunk " << chunk;
    EXPECT_EQ(items[0], (Item{LineReader::Result::kLine, "short", 6}));
    EXPECT_EQ(items[1], (Item{LineReader::Result::kTooLong, "", 32}));
    EXPECT_EQ(items[2], (Item{LineReader::Result::kLine, "0123456789", 43}));  // exactly the cap
    EXPECT_EQ(items[3], (Item{LineReader::Result::kTooLong, "", 55}));
    EXPECT_EQ(items[4], (Item{LineReader::Result::kLine, "ok", 58}));
    EXPECT_EQ(items[5].result, LineReader::Result::kEnd);
    EXPECT_EQ(r.pending_bytes(), 0u);
    // The buffer never grew past the cap (+1 byte to see it is over) or the chunk size.
    EXPECT_LE(max_readable, std::max<size_t>(chunk, 11) + LineReader::kPadding)
        << "chunk " << chunk;
  }
}

TEST(LineReader, A5_HugeLineIsNotBuffered) {
  // A 1 MB line with a 100-byte cap, read in 16-byte chunks: dropped as it streams by.
  const std::string data = "a\n" + std::string(1 << 20, 'z') + "\nb\n";
  ChunkedFile f(data, {4096});
  size_t max_readable = 0;
  LineReader r(&f, 0, Opts(16, /*max_line=*/100));
  auto items = ReadAll(r, &max_readable);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].line, "a");
  EXPECT_EQ(items[1].result, LineReader::Result::kTooLong);
  EXPECT_EQ(items[1].consumed, 2u + (1 << 20) + 1);
  EXPECT_EQ(items[2].line, "b");
  EXPECT_LE(max_readable, 101 + LineReader::kPadding);
}

TEST(LineReader, A5_OverlongFinalLineWithoutNewlineIsPending) {
  const std::string data = "ok\n" + std::string(30, 'y');
  ChunkedFile f(data);
  LineReader r(&f, 0, Opts(4, /*max_line=*/10));
  auto items = ReadAll(r);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].line, "ok");
  EXPECT_EQ(items[1].result, LineReader::Result::kEnd);
  EXPECT_EQ(r.consumed_offset(), 3u);
  EXPECT_EQ(r.pending_bytes(), 30u);
}

TEST(LineReader, A5_MemoryFollowsTheLongestLineNotTheFileSize) {
  std::string data;
  for (int i = 0; i < 20000; ++i) data += std::string(40, char('a' + i % 26)) + "\n";
  ChunkedFile f(data, {4096});
  size_t max_readable = 0;
  LineReader r(&f, 0, Opts(64));
  auto items = ReadAll(r, &max_readable);
  EXPECT_EQ(Lines(items).size(), 20000u);
  EXPECT_LE(max_readable, 64 + LineReader::kPadding);

  // One long line raises the buffer; it is given back afterwards.
  std::string mixed = std::string(5000, 'L') + "\n";
  for (int i = 0; i < 100; ++i) mixed += std::string(40, 's') + "\n";
  ChunkedFile g(mixed, {4096});
  LineReader r2(&g, 0, Opts(64));
  std::string_view line;
  size_t readable = 0;
  ASSERT_EQ(r2.Next(&line, &readable), LineReader::Result::kLine);
  EXPECT_EQ(line.size(), 5000u);
  size_t last_readable = 0;
  int n = 0;
  while (r2.Next(&line, &readable) == LineReader::Result::kLine) {
    last_readable = readable;
    ++n;
  }
  EXPECT_EQ(n, 100);
  EXPECT_LE(last_readable, 64 + LineReader::kPadding);
}

// A scanner worker lends one LineBuffer to every reader: the buffer is reused as is, a long line
// grows it, and the next reader gives the growth back; lines are the same as with own buffers.
TEST(LineReader, BorrowedBufferIsReusedAcrossReaders) {
  LineBuffer buffer;
  std::string first = "one\n" + std::string(5000, 'L') + "\nthree\n";
  ChunkedFile f(first, {4096});
  {
    LineReader r(&f, 0, Opts(64), &buffer);
    std::string_view line;
    size_t readable = 0;
    ASSERT_EQ(r.Next(&line, &readable), LineReader::Result::kLine);
    EXPECT_EQ(line, "one");
    ASSERT_EQ(r.Next(&line, &readable), LineReader::Result::kLine);
    EXPECT_EQ(line, std::string(5000, 'L'));
  }  // a reader may stop anywhere (a piece's end): the buffer stays as it was
  EXPECT_GT(buffer.capacity, 4u * 64);
  const char* grown = buffer.data.get();
  ASSERT_NE(grown, nullptr);

  ChunkedFile g("four\nfive\npartial", {3});
  LineReader r2(&g, 0, Opts(64), &buffer);
  auto items = ReadAll(r2);
  EXPECT_EQ(Lines(items), (std::vector<std::string>{"four", "five"}));
  EXPECT_EQ(r2.consumed_offset(), 10u);
  EXPECT_EQ(r2.pending_bytes(), 7u);
  EXPECT_EQ(buffer.capacity, 64u);  // the growth was given back

  const char* reused = buffer.data.get();
  ChunkedFile h("six\n", {4096});
  LineReader r3(&h, 0, Opts(64), &buffer);
  EXPECT_EQ(Lines(ReadAll(r3)), (std::vector<std::string>{"six"}));
  EXPECT_EQ(buffer.data.get(), reused);  // a chunk-sized buffer is reused, not reallocated
}

// An owner that lends its buffer and then idles (the agent between reads) frees what a long line
// grew, and only that: a chunk-sized buffer is kept; a freed one works for the next reader.
TEST(LineReader, ReleaseIfOverFreesOnlyALongLinesGrowth) {
  LineBuffer buffer;
  {
    // A long last line still being written: the reader keeps it whole, pending.
    ChunkedFile f("a\n" + std::string(5000, 'L'), {4096});
    LineReader r(&f, 0, Opts(64), &buffer);
    EXPECT_EQ(Lines(ReadAll(r)).size(), 1u);
    EXPECT_EQ(r.pending_bytes(), 5000u);
  }
  ASSERT_GT(buffer.capacity, 4096u);
  buffer.ReleaseIfOver(4096);
  EXPECT_EQ(buffer.capacity, 0u);
  EXPECT_EQ(buffer.data.get(), nullptr);
  ChunkedFile g("b\nc\n", {4096});
  {
    LineReader r(&g, 0, Opts(64), &buffer);
    EXPECT_EQ(Lines(ReadAll(r)), (std::vector<std::string>{"b", "c"}));
  }
  const char* kept = buffer.data.get();
  ASSERT_NE(kept, nullptr);
  buffer.ReleaseIfOver(4096);
  EXPECT_EQ(buffer.data.get(), kept) << "a chunk-sized buffer is kept";
}

TEST(LineReader, A11_ReadErrorStopsWithStatus) {
  const std::string data = "line one\nline two\nline three\n";
  ChunkedFile f(data, {1, 2, 3, 4, 5, 6, 7}, /*fail_at=*/15);
  LineReader r(&f, 0, Opts(4));
  auto items = ReadAll(r);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0], (Item{LineReader::Result::kLine, "line one", 9}));
  EXPECT_EQ(items[1].result, LineReader::Result::kError);
  EXPECT_FALSE(r.status().ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIoError);
  EXPECT_EQ(r.status().message(), "fake.jsonl: read: Input/output error");
  EXPECT_EQ(r.consumed_offset(), 9u);
  // It stays failed without reading again.
  size_t reads = f.reads();
  std::string_view line;
  size_t readable;
  EXPECT_EQ(r.Next(&line, &readable), LineReader::Result::kError);
  EXPECT_EQ(f.reads(), reads);
}

TEST(FileSource, A4_RealFileFromOffset) {
  TempDir dir;
  const std::string path = dir / "s.jsonl";
  WriteFile(path, "first\nsecond\nthird-partial");
  std::unique_ptr<SequentialFile> file;
  ASSERT_TRUE(Env::Default()->NewSequentialFile(path, 0, &file).ok());
  LineReader r(file.get(), 0, Opts(3));
  auto items = ReadAll(r);
  EXPECT_EQ(Lines(items), (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(r.consumed_offset(), 13u);
  EXPECT_EQ(r.pending_bytes(), 13u);

  std::unique_ptr<SequentialFile> resumed;
  ASSERT_TRUE(Env::Default()->NewSequentialFile(path, 6, &resumed).ok());
  LineReader r2(resumed.get(), 6, Opts(1024));
  items = ReadAll(r2);
  EXPECT_EQ(Lines(items), (std::vector<std::string>{"second"}));
  EXPECT_EQ(r2.consumed_offset(), 13u);
}

TEST(FileSource, MissingFileIsNotFoundNamingThePath) {
  TempDir dir;
  std::unique_ptr<SequentialFile> file;
  Status s = Env::Default()->NewSequentialFile(dir / "nope.jsonl", 0, &file);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find(dir / "nope.jsonl"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("open"), std::string::npos) << s.message();
}

// --- Linear work on long lines (hostile-trial defect 3)

std::unique_ptr<SequentialFile> Open(Env* env, const std::string& path, uint64_t offset = 0) {
  std::unique_ptr<SequentialFile> f;
  Status s = env->NewSequentialFile(path, offset, &f);
  EXPECT_TRUE(s.ok()) << s.message();
  return f;
}

// A valid line, then 256 MiB of NUL bytes without a newline (a crash-zeroed tail), read with the
// default options (64 MiB cap): every byte is read once, the buffer grows once to the cap, and the
// bytes copied are those of that one growth (the old reader shrank and regrew the buffer for each
// 64 MiB dropped).
TEST(LineReader, A5_CrashZeroedTailCostsOnePass) {
  testing_util::MemEnv mem;
  const std::string first = testing_util::Line(testing_util::Msg{}) + "\n";
  const uint64_t size = first.size() + (uint64_t(256) << 20);
  mem.AddGeneratedFile("/t.jsonl", first, size, '\0');
  testing_util::FaultEnv env(&mem);
  auto file = Open(&env, "/t.jsonl");
  LineReader::Options o;
  LineReader r(file.get(), 0, o);
  auto items = ReadAll(r);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].line + "\n", first);
  EXPECT_EQ(items[1].result, LineReader::Result::kEnd);
  EXPECT_EQ(r.consumed_offset(), first.size());
  EXPECT_EQ(r.pending_bytes(), uint64_t(256) << 20);
  EXPECT_TRUE(r.at_eof());
  EXPECT_EQ(r.stats().bytes_read, size);
  EXPECT_EQ(env.bytes_read(), size);
  // Growth by doubling to the cap copies less than twice the cap, once.
  EXPECT_LE(r.stats().bytes_copied, 2 * o.max_line_bytes + o.chunk_bytes);
  // Reads: the growth phase, then a chunk at a time.
  EXPECT_LE(r.stats().reads, 20 + ((uint64_t(256) << 20) - o.max_line_bytes) / o.chunk_bytes + 2);
  EXPECT_LE(env.max_read_request(), o.max_line_bytes + 1);
}

TEST(LineReader, A5_OverCapLineIsDroppedInOnePass) {
  testing_util::MemEnv mem;
  const std::string first = "{\"first\":1}\n";
  const uint64_t long_line = uint64_t(256) << 20;
  // A first line, then a 256 MiB line of 'x' (over a 1 MiB cap) that runs to the end of the file.
  mem.AddGeneratedFile("/over.jsonl", first, first.size() + long_line, 'x');
  testing_util::FaultEnv env(&mem);
  auto file = Open(&env, "/over.jsonl");
  LineReader::Options o;
  o.max_line_bytes = size_t(1) << 20;
  LineReader r(file.get(), 0, o);
  auto items = ReadAll(r);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1].result, LineReader::Result::kEnd);
  EXPECT_EQ(r.pending_bytes(), long_line);
  EXPECT_EQ(env.bytes_read(), first.size() + long_line);
  EXPECT_LE(r.stats().bytes_copied, 2 * o.max_line_bytes + o.chunk_bytes);
  // The cap bounds the memory: no read asks for more than the cap + 1.
  EXPECT_LE(env.max_read_request(), o.max_line_bytes + 1);
}

TEST(LineReader, A5_OverCapLineFollowedByLinesWorkStaysLinear) {
  // Many over-cap lines with short lines between them: each is dropped without regrowing.
  std::string data;
  const size_t cap = 4096;
  for (int i = 0; i < 200; ++i)
    data += std::string(50000, 'x') + "\nshort" + std::to_string(i) + "\n";
  ChunkedFile f(data, {1 << 20});
  LineReader::Options o = Opts(1024, cap);
  LineReader r(&f, 0, o);
  auto items = ReadAll(r);
  size_t too_long = 0;
  for (const auto& i : items) too_long += i.result == LineReader::Result::kTooLong;
  EXPECT_EQ(too_long, 200u);
  EXPECT_EQ(Lines(items).size(), 200u);
  EXPECT_EQ(r.stats().bytes_read, data.size());
  // Each over-cap line costs at most one growth to the cap (< 2 x cap copied) and a compaction.
  EXPECT_LE(r.stats().bytes_copied, 200 * (2 * cap + 1024));
}

// --- SkipPartialLine: where a later piece of a file begins

LineReader::Options Piece(uint64_t end_offset, size_t chunk = 4) {
  LineReader::Options o = Opts(chunk);
  o.end_offset = end_offset;
  return o;
}

TEST(LineReader, SkipPartialLineFindsTheFirstLineStart) {
  // The piece [10, 29) of this file, opened one byte early (at 9).
  const std::string data = "0123456789abcdef\nline2\nline3\nline4\n";
  ChunkedFile f(data.substr(9));
  LineReader r(&f, 9, Piece(29));
  ASSERT_TRUE(r.SkipPartialLine());
  EXPECT_EQ(r.consumed_offset(), 17u);
  auto items = ReadAll(r);
  EXPECT_EQ(Lines(items), (std::vector<std::string>{"line2", "line3"}));  // line4 starts at 29
  EXPECT_EQ(r.consumed_offset(), 29u);
}

TEST(LineReader, SkipPartialLineWhenTheByteBeforeIsANewline) {
  // A line starting exactly at the piece start belongs to this piece.
  const std::string data = "abc\ndef\n";
  ChunkedFile f(data.substr(3));
  LineReader r(&f, 3, Piece(100));
  ASSERT_TRUE(r.SkipPartialLine());
  EXPECT_EQ(r.consumed_offset(), 4u);
  EXPECT_EQ(Lines(ReadAll(r)), (std::vector<std::string>{"def"}));
}

TEST(LineReader, SkipPartialLineStopsAtTheEndOffset) {
  // No newline inside the piece: the reader must not read on through the rest of the line (the
  // quadratic cost of defect 3: every piece read the tail to the end of the file).
  testing_util::MemEnv mem;
  mem.AddGeneratedFile("/z", "x", uint64_t(64) << 20, '\0');
  testing_util::FaultEnv env(&mem);
  const uint64_t begin = uint64_t(16) << 20, end = uint64_t(32) << 20;
  auto file = Open(&env, "/z", begin - 1);
  LineReader::Options o;
  o.end_offset = end;
  LineReader r(file.get(), begin - 1, o);
  EXPECT_FALSE(r.SkipPartialLine());
  EXPECT_TRUE(r.status().ok());
  EXPECT_FALSE(r.at_eof());
  EXPECT_LE(env.bytes_read(), end - begin + 1 + o.chunk_bytes);
  std::string_view line;
  size_t readable;
  EXPECT_EQ(r.Next(&line, &readable), LineReader::Result::kEnd);
  EXPECT_LE(env.bytes_read(), end - begin + 1 + o.chunk_bytes);  // Next() did not read on
}

TEST(LineReader, SkipPartialLineNewlineRightBeforeTheEnd) {
  // "\n" at end_offset - 1: the next line starts at end_offset, which is the next piece's.
  const std::string data = "aaaa\nbbbb\n";
  ChunkedFile f(data.substr(1));
  LineReader r(&f, 1, Piece(5));
  EXPECT_FALSE(r.SkipPartialLine());
  EXPECT_EQ(r.consumed_offset(), 5u);
}

TEST(LineReader, SkipPartialLineAtEndOfFileAndOnError) {
  ChunkedFile tail("no newline here");
  LineReader r(&tail, 40, Piece(1000));
  EXPECT_FALSE(r.SkipPartialLine());
  EXPECT_TRUE(r.at_eof());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.consumed_offset() + r.pending_bytes(), 55u);

  ChunkedFile failing("abcdefgh\nij\n", {3}, /*fail_at=*/4);
  LineReader e(&failing, 0, Piece(1000));
  EXPECT_FALSE(e.SkipPartialLine());
  EXPECT_EQ(e.status().message(), "fake.jsonl: read: Input/output error");
  std::string_view line;
  size_t readable;
  EXPECT_EQ(e.Next(&line, &readable), LineReader::Result::kError);
}

}  // namespace
}  // namespace ccmon
