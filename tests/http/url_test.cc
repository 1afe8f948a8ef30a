// ParseHttpUrl: what a URL may hold, and the clear errors for what it may not (issue #6, 8.10:
// ":99999" once connected to port 34463).
#include "http/url.h"

#include <gtest/gtest.h>

namespace ccmon {
namespace {

HttpUrl Parse(const std::string& url) {
  HttpUrl u;
  Status s = ParseHttpUrl(url, &u);
  EXPECT_TRUE(s.ok()) << url << ": " << s.message();
  return u;
}

std::string Error(const std::string& url) {
  HttpUrl u;
  Status s = ParseHttpUrl(url, &u);
  EXPECT_FALSE(s.ok()) << url << " was accepted";
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << url;
  return s.message();
}

TEST(HttpUrl, AcceptsSchemesHostsPortsAndPaths) {
  HttpUrl u = Parse("http://127.0.0.1:9090/api/v1/write");
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 9090);
  EXPECT_FALSE(u.default_port);
  EXPECT_EQ(u.target, "/api/v1/write");
  EXPECT_EQ(u.HostHeader(), "127.0.0.1:9090");
  EXPECT_EQ(u.Origin(), "http://127.0.0.1:9090");

  u = Parse("HTTPS://Mimir.example.com/api/v1/push?tenant=a%20b&x=1");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.port, 443);
  EXPECT_TRUE(u.default_port);
  EXPECT_EQ(u.HostHeader(), "Mimir.example.com");
  EXPECT_EQ(u.target, "/api/v1/push?tenant=a%20b&x=1");

  u = Parse("http://[::1]:8428/api/v1/write");
  EXPECT_TRUE(u.ipv6);
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8428);
  EXPECT_EQ(u.HostHeader(), "[::1]:8428");
  EXPECT_EQ(u.Origin(), "http://[::1]:8428");

  u = Parse("http://[2001:db8::7]/");
  EXPECT_EQ(u.host, "2001:db8::7");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.HostHeader(), "[2001:db8::7]");

  EXPECT_EQ(Parse("http://host").target, "/");
  EXPECT_EQ(Parse("http://host?q=1").target, "/?q=1");
  EXPECT_EQ(Parse("http://host/p#frag").target, "/p");  // a fragment is never sent
  EXPECT_EQ(Parse("http://my_host-1.local:1/").port, 1);
  EXPECT_EQ(Parse("http://h:65535/").port, 65535);
  EXPECT_EQ(Parse("http://h:00080/").port, 80);
  EXPECT_EQ(Parse("http://h/a:b@c/!$&'()*+,;=-._~").target, "/a:b@c/!$&'()*+,;=-._~");
}

TEST(HttpUrl, RefusesPortsOutsideOneTo65535) {
  for (const char* url : {"http://127.0.0.1:99999/", "http://127.0.0.1:65536/",
                          "http://127.0.0.1:0/", "http://127.0.0.1:4294967377/",
                          "http://127.0.0.1:18446744073709551617/", "http://[::1]:70000/"}) {
    EXPECT_NE(Error(url).find("out of range (1..65535)"), std::string::npos) << url;
  }
  for (const char* url : {"http://h:-1/", "http://h:+80/", "http://h:8o/", "http://h:80 /",
                          "http://h: 80/", "http://h:0x50/"}) {
    EXPECT_NE(Error(url).find("is not a number"), std::string::npos) << url;
  }
  EXPECT_NE(Error("http://h:/").find("empty port"), std::string::npos);
  EXPECT_NE(Error("http://[::1]:/").find("empty port"), std::string::npos);
}

TEST(HttpUrl, RefusesBadSchemesAndHosts) {
  for (const char* url : {"ftp://h/", "h:80/x", "//h/", "http:/h/", "", "httpx://h/"}) {
    EXPECT_NE(Error(url).find("must start with http:// or https://"), std::string::npos) << url;
  }
  EXPECT_NE(Error("http://").find("no host"), std::string::npos);
  EXPECT_NE(Error("http:///path").find("no host"), std::string::npos);
  EXPECT_NE(Error("http://:80/").find("no host"), std::string::npos);
  EXPECT_NE(Error("http://ho st/").find("host has"), std::string::npos);
  EXPECT_NE(Error("http://h\r\nX-Evil: 1/").find("host has 0x0D at byte 2"), std::string::npos);
  EXPECT_NE(Error("http://::1/").find("IPv6 address in brackets"), std::string::npos);
  EXPECT_NE(Error("http://[::1/x").find("'[' without ']'"), std::string::npos);
  EXPECT_NE(Error("http://[]/").find("not an IPv6 address"), std::string::npos);
  EXPECT_NE(Error("http://[::g]/").find("not an IPv6 address"), std::string::npos);
  EXPECT_NE(Error("http://[127.0.0.1]/").find("not an IPv6 address"), std::string::npos);
  EXPECT_NE(Error("http://[fe80::1%25eth0]/").find("not an IPv6 address"), std::string::npos);
  EXPECT_NE(Error("http://[::1]x/").find("after the IPv6"), std::string::npos);
}

TEST(HttpUrl, RefusesUserInfoWithoutEchoingIt) {
  const std::string e = Error("https://alice:s3cret@mimir.example.com/api/v1/push");
  EXPECT_NE(e.find("user info"), std::string::npos) << e;
  EXPECT_EQ(e.find("s3cret"), std::string::npos) << e;
}

TEST(HttpUrl, RefusesPathsThatCouldEndTheRequestLine) {
  EXPECT_NE(Error("http://h/a b").find("path has 0x20 at byte 3; percent-encode it"),
            std::string::npos);
  EXPECT_NE(Error("http://h/a\r\nInjected: 1").find("path has 0x0D"), std::string::npos);
  EXPECT_NE(Error(std::string("http://h/a\0b", 12)).find("path has 0x00"), std::string::npos);
  EXPECT_NE(Error("http://h/caf\xc3\xa9").find("path has 0xC3"), std::string::npos);
  EXPECT_NE(Error("http://h/a\"b").find("path has '\"'"), std::string::npos);
  EXPECT_NE(Error("http://h/a%zz").find("not followed by two hex digits"), std::string::npos);
  EXPECT_NE(Error("http://h/a%2").find("not followed by two hex digits"), std::string::npos);
  EXPECT_NE(Error("http://h/a%").find("not followed by two hex digits"), std::string::npos);
}

}  // namespace
}  // namespace ccmon
