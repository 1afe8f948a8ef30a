// BuildEndpointHeaders and its parts: --header flags, token and password files (real files,
// /dev/zero included) and the conflicts between them (issue #6, 5 and 8.8-8.9).
#include "http/endpoint_headers.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ccmon {
namespace {

// A temporary directory with files written byte for byte; removed at the end.
class Files {
 public:
  Files() {
    std::string tmpl = ::testing::TempDir() + "ccmon_endpoint_headers_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp";
    dir_ = tmpl;
  }
  ~Files() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), std::streamsize(content.size()));
    EXPECT_TRUE(out.good()) << path;
    return path;
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

TEST(EndpointHeaders, ParsesHeaderFlags) {
  HttpHeader h;
  ASSERT_TRUE(ParseHeaderFlag("X-Scope-OrgID: team-a", &h).ok());
  EXPECT_EQ(h, (HttpHeader{"X-Scope-OrgID", "team-a"}));
  ASSERT_TRUE(ParseHeaderFlag("X-A:b", &h).ok());
  EXPECT_EQ(h, (HttpHeader{"X-A", "b"}));
  ASSERT_TRUE(ParseHeaderFlag("X-A: \t v: w \t", &h).ok());  // value trimmed; ':' inside is fine
  EXPECT_EQ(h, (HttpHeader{"X-A", "v: w"}));
  ASSERT_TRUE(ParseHeaderFlag("X-Empty:", &h).ok());
  EXPECT_EQ(h, (HttpHeader{"X-Empty", ""}));
}

TEST(EndpointHeaders, RefusesMalformedAndInjectedHeaderFlags) {
  HttpHeader h;
  EXPECT_NE(ParseHeaderFlag("X-Scope-OrgID team-a", &h).message().find("has no ':'"),
            std::string::npos);
  EXPECT_NE(ParseHeaderFlag(": v", &h).message().find("the name is empty"), std::string::npos);
  EXPECT_NE(ParseHeaderFlag("X-A : v", &h).message().find("has 0x20 at byte 4"), std::string::npos);
  // Issue #6, 8.9: --header $'X-Evil: a\r\nInjected: 1'.
  Status s = ParseHeaderFlag("X-Evil: a\r\nInjected: 1", &h);
  EXPECT_NE(s.message().find("X-Evil has CR at byte 2"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("Injected"), std::string::npos) << s.message();
  EXPECT_FALSE(ParseHeaderFlag("X-Evil: a\nInjected: 1", &h).ok());
  EXPECT_FALSE(ParseHeaderFlag(std::string("X-Evil: a\0b", 11), &h).ok());
  EXPECT_FALSE(ParseHeaderFlag("X-Evil\r\nInjected: 1", &h).ok());
  EXPECT_FALSE(ParseHeaderFlag("Content-Length: 0", &h).ok());
}

// A second Content-Type or a forged batch identity would be sent beside ccmon's own, and the
// receiver would pick one of them: every header ccmon sets itself is refused, in any case.
TEST(EndpointHeaders, RefusesHeadersCcmonSetsItself) {
  HttpHeader h;
  for (const char* flag :
       {"Content-Type: text/plain", "content-encoding: gzip", "HOST: example.com",
        "Connection: close", "User-Agent: x", "X-Prometheus-Remote-Write-Version: 2.0.0",
        "x-ccmon-batch: 0000000000000001/0/1-1", "X-Ccmon-Stream: 1", "Expect: 100-continue",
        "Transfer-Encoding: chunked", "Keep-Alive: 5", "TE: trailers", "Upgrade: h2c"}) {
    Status s = ParseHeaderFlag(flag, &h);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << flag;
  }
  Status s = ParseHeaderFlag("Content-Type: text/plain", &h);
  EXPECT_NE(s.message().find("set by ccmon"), std::string::npos) << s.message();
  // Near misses stay allowed.
  EXPECT_TRUE(ParseHeaderFlag("X-Ccmon: 1", &h).ok());
  EXPECT_TRUE(ParseHeaderFlag("X-Content-Type: 1", &h).ok());
  EXPECT_TRUE(ParseHeaderFlag("Authorization: Bearer abc", &h).ok());
  EXPECT_TRUE(ParseHeaderFlag("X-Scope-OrgID: team-a", &h).ok());
}

TEST(EndpointHeaders, TokenFileLineEndsAndWhitespaceAreTrimmed) {
  Files f;
  struct Row {
    std::string content;
    std::string token;
  };
  const Row rows[] = {
      {"t0k", "t0k"},        {"t0k\n", "t0k"},      {"t0k\r\n", "t0k"},
      {"  t0k \t\n", "t0k"}, {"\tt0k \r\n", "t0k"}, {"a.b-c_d~e+f/g==\n", "a.b-c_d~e+f/g=="},
  };
  for (const Row& row : rows) {
    std::string token;
    Status s = ReadCredentialFile(Env::Default(), f.Write("token", row.content), &token);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(token, row.token);
  }
}

TEST(EndpointHeaders, TokenFilesThatAreNotOneLineAreRefused) {
  Files f;
  struct Row {
    std::string content;
    const char* want;
  };
  const Row rows[] = {
      {"", "empty"},
      {"\n", "empty"},
      {"\r\n", "empty"},
      {"  \t \n", "empty"},
      {"t0k\r", "a CR inside"},            // a bare CR is not a line end
      {"t0k\n\n", "a line break inside"},  // only one line end is trimmed
      {"t0k\r\n\r\n", "a CR inside"},
      {"line1\nline2\n", "a line break inside"},
      {std::string("t0\0k\n", 5), "a NUL byte inside"},
      {"t0k\x1b\n", "a control character inside"},
  };
  for (const Row& row : rows) {
    std::string token = "unchanged";
    Status s = ReadCredentialFile(Env::Default(), f.Write("token", row.content), &token);
    ASSERT_FALSE(s.ok()) << "accepted: " << row.content;
    EXPECT_NE(s.message().find(row.want), std::string::npos) << s.message();
    // The message names the file and never shows its content.
    std::string m = s.message();
    const size_t at = m.find(f.Path("token"));
    ASSERT_NE(at, std::string::npos) << m;
    m.erase(at, f.Path("token").size());
    EXPECT_EQ(m.find("t0"), std::string::npos) << m;
    EXPECT_EQ(m.find("line1"), std::string::npos) << m;
    EXPECT_EQ(token, "unchanged");
  }
}

TEST(EndpointHeaders, BigFilesAndDevZeroAreRefusedUnread) {
  Files f;
  std::string token;
  Status s = ReadCredentialFile(Env::Default(), "/dev/zero", &token);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("larger than 65536 bytes"), std::string::npos) << s.message();
  s = ReadCredentialFile(Env::Default(), f.Write("big", std::string(65537, 'a')), &token);
  EXPECT_NE(s.message().find("larger than 65536 bytes"), std::string::npos) << s.message();
  // Exactly at the cap is fine.
  ASSERT_TRUE(
      ReadCredentialFile(Env::Default(), f.Write("cap", std::string(65536, 'a')), &token).ok());
  EXPECT_EQ(token.size(), 65536u);
  EXPECT_FALSE(ReadCredentialFile(Env::Default(), f.Path("missing"), &token).ok());
}

TEST(EndpointHeaders, BuildsHeadersThenAuthorization) {
  Files f;
  EndpointHeaderOptions o;
  o.headers = {"X-Scope-OrgID: team-a", "X-B: 2"};
  o.bearer_token_file = f.Write("token", "t0k\r\n");
  std::vector<HttpHeader> out;
  ASSERT_TRUE(BuildEndpointHeaders(Env::Default(), o, &out).ok());
  EXPECT_EQ(out, (std::vector<HttpHeader>{
                     {"X-Scope-OrgID", "team-a"}, {"X-B", "2"}, {"Authorization", "Bearer t0k"}}));

  EndpointHeaderOptions basic;
  basic.basic_auth_user = "Aladdin";
  basic.basic_auth_password_file = f.Write("password", "open sesame\n");
  ASSERT_TRUE(BuildEndpointHeaders(Env::Default(), basic, &out).ok());
  // RFC 7617's example.
  EXPECT_EQ(out,
            (std::vector<HttpHeader>{{"Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}}));
  for (const auto& [password, encoded] : std::vector<std::pair<std::string, std::string>>{
           {"p", "dTpw"}, {"pw", "dTpwdw=="}, {"pwd", "dTpwd2Q="}}) {
    basic.basic_auth_user = "u";
    basic.basic_auth_password_file = f.Write("password", password);
    ASSERT_TRUE(BuildEndpointHeaders(Env::Default(), basic, &out).ok());
    EXPECT_EQ(out[0].second, "Basic " + encoded) << password;
  }

  ASSERT_TRUE(BuildEndpointHeaders(Env::Default(), EndpointHeaderOptions{}, &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(EndpointHeaders, RefusesConflictsAndBadCredentials) {
  Files f;
  const std::string token = f.Write("token", "t0k\n");
  const std::string password = f.Write("password", "pw\n");
  auto error = [](const EndpointHeaderOptions& o) {
    std::vector<HttpHeader> out = {{"untouched", "1"}};
    Status s = BuildEndpointHeaders(Env::Default(), o, &out);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(out, (std::vector<HttpHeader>{{"untouched", "1"}}));
    return s.message();
  };
  EndpointHeaderOptions o;
  o.headers = {"X-A: 1", "x-a: 2"};
  EXPECT_NE(error(o).find("header x-a is given twice"), std::string::npos);
  o = {};
  o.bearer_token_file = token;
  o.basic_auth_user = "u";
  o.basic_auth_password_file = password;
  EXPECT_NE(error(o).find("not both"), std::string::npos);
  o = {};
  o.headers = {"authorization: Bearer other"};
  o.bearer_token_file = token;
  EXPECT_NE(error(o).find("both as a header and as a bearer token"), std::string::npos);
  o = {};
  o.basic_auth_user = "u";
  EXPECT_NE(error(o).find("needs both a user and a password file"), std::string::npos);
  o = {};
  o.basic_auth_password_file = password;
  EXPECT_NE(error(o).find("needs both a user and a password file"), std::string::npos);
  o = {};
  o.basic_auth_user = "u:v";
  o.basic_auth_password_file = password;
  EXPECT_NE(error(o).find("cannot hold ':'"), std::string::npos);
  o.basic_auth_user = "u\r\nX: 1";
  EXPECT_NE(error(o).find("control characters"), std::string::npos);
  o = {};
  o.bearer_token_file = f.Write("spaced", "t0k en\n");
  EXPECT_NE(error(o).find("whitespace inside"), std::string::npos);
  o.bearer_token_file = f.Write("crlf-inside", "t0k\r\nInjected: 1\r\n");
  const std::string e = error(o);
  EXPECT_NE(e.find("bearer token file"), std::string::npos) << e;
  EXPECT_EQ(e.find("Injected"), std::string::npos) << e;
  o.bearer_token_file = "/dev/zero";
  EXPECT_NE(error(o).find("larger than"), std::string::npos);
  o = {};
  o.headers = {"X-Evil: a\r\nInjected: 1"};
  EXPECT_NE(error(o).find("has CR"), std::string::npos);
}

}  // namespace
}  // namespace ccmon
