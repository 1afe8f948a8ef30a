// base/utf8: the strict validator, on the edge cases of RFC 3629 and differentially against
// simdjson's validator (the one the line parser uses) on random byte strings.
#include "base/utf8.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <random>
#include <string>

namespace ccmon {
namespace {

TEST(Utf8, EdgeCases) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii, longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("\xC2\x80"));               // U+0080
  EXPECT_TRUE(IsValidUtf8("\xDF\xBF"));               // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xE0\xA0\x80"));           // U+0800
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));           // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));           // U+E000
  EXPECT_TRUE(IsValidUtf8("\xF0\x90\x80\x80"));       // U+10000
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));       // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("\xE2\x80\xA8 \xC2\x85"));  // U+2028, U+0085
  EXPECT_FALSE(IsValidUtf8("\x80"));                  // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));              // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xC1\xBF"));
  EXPECT_FALSE(IsValidUtf8("\xE0\x9F\xBF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF0\x8F\xBF\xBF"));  // overlong
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("abc\xE2\x82"));  // truncated at the end
  EXPECT_FALSE(IsValidUtf8("abcdefgh\xC2"));
  EXPECT_FALSE(IsValidUtf8(std::string("\xC2\x41", 2)));
}

TEST(Utf8, AgreesWithSimdjsonOnRandomInput) {
  std::mt19937_64 rng(42);
  // Bytes that start, continue or break sequences at the boundaries of the valid ranges.
  const char alphabet[] = {'a',    '\0',   '\x80', '\xBF', '\xC2', '\xDF', '\xE0', '\xED',
                           '\xEF', '\xF0', '\xF4', '\xF5', '\xA0', '\x9F', '\x90', '\x8F'};
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    const int n = int(rng() % 24);
    for (int k = 0; k < n; ++k) s.push_back(alphabet[rng() % std::size(alphabet)]);
    ASSERT_EQ(IsValidUtf8(s), simdjson::validate_utf8(s.data(), s.size())) << i;
  }
}

TEST(TerminalSafe, EscapesControlsAndInvalidBytesKeepsPrintableText) {
  EXPECT_EQ(TerminalSafe("claude-opus-4-6"), "claude-opus-4-6");
  EXPECT_EQ(TerminalSafe("C:\\work\\proj \"x\""), "C:\\work\\proj \"x\"");
  EXPECT_EQ(TerminalSafe("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  // ESC sequences (clear screen, window title), BEL, NUL, DEL, line ends and tabs.
  EXPECT_EQ(TerminalSafe("a\x1b[2Jb\x1b]0;pwned\x07"), "a\\x1b[2Jb\\x1b]0;pwned\\x07");
  EXPECT_EQ(TerminalSafe(std::string("n\0ul\x7f", 5)), "n\\x00ul\\x7f");
  EXPECT_EQ(TerminalSafe("two\nlines\r\tx"), "two\\nlines\\r\\tx");
  // C1 controls (U+009B is a one-byte CSI on some terminals) and bytes that are not UTF-8.
  EXPECT_EQ(TerminalSafe("x\xc2\x9b"
                         "2Jy\xc2\xa0z"),
            "x\\xc2\\x9b2Jy\xc2\xa0z");
  EXPECT_EQ(TerminalSafe("bad\xff\xc3(\xe2\x82"), "bad\\xff\\xc3(\\xe2\\x82");
  EXPECT_EQ(TerminalSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
}

TEST(Utf8Prefix, NeverCutsASequence) {
  EXPECT_EQ(Utf8Prefix("abc", 5), "abc");
  EXPECT_EQ(Utf8Prefix("abcdef", 3), "abc");
  EXPECT_EQ(Utf8Prefix("ab\xc3\xa9", 3), "ab");
  EXPECT_EQ(Utf8Prefix("ab\xc3\xa9x", 4), "ab\xc3\xa9");
  EXPECT_EQ(Utf8Prefix("a\xf0\x9f\x98\x80", 4), "a");
  EXPECT_EQ(Utf8Prefix("a\xf0\x9f\x98\x80", 5), "a\xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace ccmon
