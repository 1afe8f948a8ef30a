// ValidateHeaderField: the RFC 9110 rules the HTTP client and the flag parser share (issue #6,
// 8.9: a CR/LF in a header injected another header).
#include "http/header.h"

#include <gtest/gtest.h>

#include "http/transport.h"

namespace ccmon {
namespace {

TEST(HttpHeader, TokensAreHeaderNames) {
  EXPECT_TRUE(IsHttpToken("X-Scope-OrgID"));
  EXPECT_TRUE(IsHttpToken("!#$%&'*+-.^_`|~09azAZ"));
  for (const char* bad : {"", "X Evil", "X:Evil", "X\tEvil", "X(Evil)", "X/Evil", "X\"", "X@Y",
                          "X[1]", "X{1}", "X=1", "X;1", "X,1", "X?", "X\\", "\xc3\xa9"}) {
    EXPECT_FALSE(IsHttpToken(bad)) << bad;
  }
  EXPECT_FALSE(IsHttpToken(std::string("X\0Y", 3)));
}

TEST(HttpHeader, ValuesWithoutControlsAreValid) {
  EXPECT_TRUE(ValidateHeaderField("Authorization", "Bearer abc.DEF-123_~+/=").ok());
  EXPECT_TRUE(ValidateHeaderField("X-Empty", "").ok());
  EXPECT_TRUE(ValidateHeaderField("X-Tab", "a\tb").ok());          // HTAB inside is allowed
  EXPECT_TRUE(ValidateHeaderField("X-Utf8", "caf\xc3\xa9").ok());  // obs-text
  EXPECT_TRUE(ValidateHeaderField("X-Punct", "a: b, \"c\"; d=e").ok());
}

TEST(HttpHeader, RefusesInjectionAndControlsWithoutEchoingTheValue) {
  struct Row {
    std::string value;
    const char* want;
  };
  const Row rows[] = {
      {"a\r\nInjected: 1", "has CR at byte 2"}, {"a\nInjected: 1", "has LF at byte 2"},
      {"secret\r", "has CR at byte 7"},         {std::string("ab\0c", 4), "has NUL at byte 3"},
      {"a\x01", "has 0x01 at byte 2"},          {"a\x1b[31m", "has 0x1B at byte 2"},
      {"a\x7f", "has 0x7F at byte 2"},          {"\x0b", "has 0x0B at byte 1"},
  };
  for (const Row& row : rows) {
    Status s = ValidateHeaderField("X-Evil", row.value);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(s.message().find(row.want), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("X-Evil"), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find("Injected"), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find("secret"), std::string::npos) << s.message();
  }
  EXPECT_NE(ValidateHeaderField("X", " a").message().find("starts or ends with whitespace"),
            std::string::npos);
  EXPECT_NE(ValidateHeaderField("X", "a\t").message().find("starts or ends with whitespace"),
            std::string::npos);
}

TEST(HttpHeader, RefusesBadNamesAndFramingHeaders) {
  EXPECT_NE(ValidateHeaderField("", "v").message().find("empty name"), std::string::npos);
  Status s = ValidateHeaderField("X-Evil\r\nInjected", "1");
  EXPECT_NE(s.message().find("'X-Evil...' has CR at byte 7"), std::string::npos) << s.message();
  s = ValidateHeaderField("X Evil", "1");
  EXPECT_NE(s.message().find("has 0x20 at byte 2"), std::string::npos) << s.message();
  s = ValidateHeaderField("X:Evil", "1");
  EXPECT_NE(s.message().find("has ':' at byte 2"), std::string::npos) << s.message();
  for (const char* name :
       {"Content-Length", "content-length", "Transfer-Encoding", "TRANSFER-ENCODING"}) {
    s = ValidateHeaderField(name, "1");
    EXPECT_NE(s.message().find("is set by the HTTP client"), std::string::npos) << name;
  }
}

TEST(HttpHeader, ResponseHeaderLookupIgnoresCase) {
  HttpResponse r;
  r.headers = {{"Retry-After", "7"}, {"X-A", "1"}, {"x-a", "2"}};
  EXPECT_EQ(r.Header("retry-after"), "7");
  EXPECT_EQ(r.Header("X-A"), "1");  // the first one
  EXPECT_EQ(r.Header("Location"), "");
  EXPECT_TRUE(EqualsIgnoreCase("Content-Type", "content-TYPE"));
  EXPECT_FALSE(EqualsIgnoreCase("Content-Type", "Content-Typ"));
}

}  // namespace
}  // namespace ccmon
