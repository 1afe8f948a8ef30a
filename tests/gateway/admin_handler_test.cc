#include "gateway/admin_handler.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gateway/cli.h"
#include "store/mem_store.h"
#include "store/rocks_store.h"
#include "testing/fake_clock.h"
#include "testing/fault_store.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using nlohmann::json;
using testing_util::FakeClock;
using testing_util::FaultStore;

constexpr char kToken[] = "s3cret-admin-token";

class AdminHandlerTest : public ::testing::Test {
 protected:
  AdminHandlerTest() : kv_(NewMemStore()), fault_(kv_.get()), clock_(1767225600000) {
    EXPECT_TRUE(DeviceRegistry::Open(&fault_, &clock_, &devices_).ok());
    handler_ = std::make_unique<AdminHandler>(devices_.get(), AdminOptions{kToken, ""});
  }
  ServerResponse Call(std::string method, std::string target, std::string body = "",
                      std::string token = kToken) {
    ServerRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    r.headers.emplace_back("Host", "gw.example:9469");
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    return handler_->Handle(r);
  }
  static json Body(const ServerResponse& r) { return json::parse(r.body, nullptr, false); }

  std::unique_ptr<KvStore> kv_;
  FaultStore fault_;
  FakeClock clock_;
  std::unique_ptr<DeviceRegistry> devices_;
  std::unique_ptr<AdminHandler> handler_;
};

TEST_F(AdminHandlerTest, AddListRevokeRotate) {
  ServerResponse r = Call("POST", "/api/v1/devices", R"({"name": "laptop"})");
  ASSERT_EQ(r.status, 201u) << r.body;
  json b = Body(r);
  const std::string key = b["key"];
  EXPECT_TRUE(IsWellFormedDeviceKey(key));
  EXPECT_EQ(b["name"], "laptop");
  EXPECT_EQ(b["setup"], "ccmon-agent setup --url http://gw.example:9469/api/v1/write --key " + key +
                            " --device laptop");
  std::string device;
  EXPECT_TRUE(devices_->Authenticate(key, &device));

  r = Call("GET", "/api/v1/devices");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body.find(key.substr(3)), std::string::npos);  // never the key
  b = Body(r);
  ASSERT_EQ(b["devices"].size(), 1u);
  EXPECT_EQ(b["devices"][0]["name"], "laptop");
  EXPECT_EQ(b["devices"][0]["created"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(b["devices"][0]["last_seen"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(b["devices"][0]["revoked"], false);
  EXPECT_EQ(b["devices"][0].size(), 4u);  // nothing else (no hash)

  r = Call("POST", "/api/v1/devices/laptop/rotate");
  ASSERT_EQ(r.status, 200u) << r.body;
  const std::string key2 = Body(r)["key"];
  EXPECT_NE(key2, key);
  EXPECT_FALSE(devices_->Authenticate(key, &device));
  EXPECT_TRUE(devices_->Authenticate(key2, &device));

  r = Call("DELETE", "/api/v1/devices/laptop");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(Body(r)["revoked"], true);
  EXPECT_FALSE(devices_->Authenticate(key2, &device));
  EXPECT_EQ(Body(Call("GET", "/api/v1/devices/"))["devices"][0]["revoked"], true);
}

TEST_F(AdminHandlerTest, EveryStatus) {
  // 409 duplicate.
  ASSERT_EQ(Call("POST", "/api/v1/devices", R"({"name": "a"})").status, 201u);
  EXPECT_EQ(Call("POST", "/api/v1/devices", R"({"name": "a"})").status, 409u);
  // 400 bodies and names.
  for (const char* body :
       {"", "{", "[]", "{}", R"({"name": 5})", R"({"name": ""})", R"({"name": "a b"})",
        R"({"name": "é"})", R"({"name": "../x"})", R"({"name": "."})", R"({"name": ".."})"}) {
    ServerResponse r = Call("POST", "/api/v1/devices", body);
    EXPECT_EQ(r.status, 400u) << body;
    EXPECT_TRUE(Body(r).contains("error")) << r.body;
  }
  EXPECT_EQ(Call("POST", "/api/v1/devices", R"({"name": ")" + std::string(65, 'x') + "\"}").status,
            400u);
  // 404 unknown devices and paths.
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/nope").status, 404u);
  EXPECT_EQ(Call("POST", "/api/v1/devices/nope/rotate").status, 404u);
  EXPECT_EQ(Call("POST", "/api/v1/devices/a/other").status, 404u);
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/a%2Fb").status, 404u);
  // 405 with Allow.
  ServerResponse r = Call("PUT", "/api/v1/devices");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.headers.back().first, "Allow");
  EXPECT_EQ(Call("GET", "/api/v1/devices/a/rotate").status, 405u);
  EXPECT_EQ(Call("GET", "/api/v1/devices/a").status, 405u);
  // 401: no token, a wrong one, a prefix of it, another scheme.
  for (std::string t : {std::string(""), std::string("wrong"), std::string(kToken).substr(0, 5),
                        std::string(kToken) + "x"}) {
    r = Call("GET", "/api/v1/devices", "", t);
    EXPECT_EQ(r.status, 401u) << t;
  }
  ServerRequest basic;
  basic.method = "GET";
  basic.target = "/api/v1/devices";
  basic.headers.emplace_back("Authorization", std::string("Basic ") + kToken);
  EXPECT_EQ(handler_->Handle(basic).status, 401u);
  // 503 when the store fails; nothing changed.
  fault_.FailNthWrite(1);
  r = Call("POST", "/api/v1/devices", R"({"name": "b"})");
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(devices_->List().size(), 1u);
  fault_.FailNthWrite(1);
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/a").status, 503u);
  EXPECT_FALSE(devices_->List()[0].revoked);
}

TEST_F(AdminHandlerTest, WithoutAnAdminTokenEverythingIs403) {
  AdminHandler off(devices_.get(), AdminOptions{});
  for (const char* method : {"GET", "POST", "DELETE"}) {
    ServerRequest r;
    r.method = method;
    r.target = "/api/v1/devices";
    r.headers.emplace_back("Authorization", "Bearer ");
    ServerResponse resp = off.Handle(r);
    EXPECT_EQ(resp.status, 403u);
    EXPECT_NE(resp.body.find("no admin token configured"), std::string::npos);
  }
}

TEST_F(AdminHandlerTest, AHostileHostHeaderNeverReachesTheSetupCommand) {
  ServerRequest r;
  r.method = "POST";
  r.target = "/api/v1/devices";
  r.body = R"({"name": "a"})";
  r.headers.emplace_back("Host", "x;rm -rf ~");
  r.headers.emplace_back("Authorization", std::string("Bearer ") + kToken);
  ServerResponse resp = handler_->Handle(r);
  ASSERT_EQ(resp.status, 201u);
  EXPECT_TRUE(Body(resp)["setup"].get<std::string>().starts_with("ccmon-agent setup --url URL "));
}

TEST(AdminTokenTest, Parse) {
  std::string t;
  ASSERT_TRUE(ParseAdminToken("abc\n", &t).ok());
  EXPECT_EQ(t, "abc");
  EXPECT_FALSE(ParseAdminToken("", &t).ok());
  EXPECT_FALSE(ParseAdminToken("\n\n", &t).ok());
  EXPECT_FALSE(ParseAdminToken("a b", &t).ok());
  EXPECT_FALSE(ParseAdminToken("a\nb", &t).ok());
  EXPECT_FALSE(ParseAdminToken(std::string(4097, 'a'), &t).ok());
  EXPECT_TRUE(ParseAdminToken(std::string(4096, 'a'), &t).ok());
}

TEST(AdminTokenTest, ServeFlag) {
  testing_util::TempDir dir;
  {
    std::ofstream(dir / "token") << "tok-1\n";
    std::ofstream(dir / "empty") << "\n";
  }
  GatewayConfig c;
  ASSERT_TRUE(ParseServeFlags({"--admin-token-file", dir / "token"}, &c).ok());
  EXPECT_EQ(c.admin_token, "tok-1");
  GatewayConfig d;
  Status s = ParseServeFlags({"--admin-token-file", dir / "empty"}, &d);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("empty"), std::string::npos);
  EXPECT_FALSE(ParseServeFlags({"--admin-token-file", dir / "absent"}, &d).ok());
  EXPECT_FALSE(ParseServeFlags({"--admin-token-file", dir.path()}, &d).ok());  // a directory
  EXPECT_EQ(d.admin_token, "");
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(DeviceCliTest, OfflineOnADataDir) {
  testing_util::TempDir dir;
  std::ostringstream out, err;
  ASSERT_EQ(RunGatewayCli({"device", "add", "box", "--data-dir", dir.path(), "--url",
                           "http://gw:9469/api/v1/write"},
                          out, err, nullptr),
            kExitOk)
      << err.str();
  std::vector<std::string> lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 2u) << out.str();
  const std::string key = lines.back();
  EXPECT_TRUE(IsWellFormedDeviceKey(key)) << key;
  EXPECT_EQ(lines[0],
            "ccmon-agent setup --url http://gw:9469/api/v1/write --key " + key + " --device box");
  // Duplicate: a failure on stderr, nothing on stdout.
  out.str("");
  err.str("");
  EXPECT_EQ(RunGatewayCli({"device", "add", "box", "--data-dir", dir.path()}, out, err, nullptr),
            kExitFailure);
  EXPECT_NE(err.str().find("already exists"), std::string::npos);
  EXPECT_EQ(out.str(), "");
  // Rotate, revoke, list.
  out.str("");
  ASSERT_EQ(RunGatewayCli({"device", "rotate", "box", "--data-dir", dir.path()}, out, err, nullptr),
            kExitOk);
  const std::string key2 = Lines(out.str()).back();
  EXPECT_NE(key2, key);
  EXPECT_TRUE(Lines(out.str())[0].starts_with("ccmon-agent setup --url URL --key dk_"));
  out.str("");
  ASSERT_EQ(RunGatewayCli({"device", "revoke", "box", "--data-dir", dir.path()}, out, err, nullptr),
            kExitOk);
  EXPECT_EQ(out.str(), "revoked box\n");
  out.str("");
  ASSERT_EQ(RunGatewayCli({"device", "list", "--data-dir", dir.path()}, out, err, nullptr),
            kExitOk);
  lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "NAME\tCREATED\tLAST_SEEN\tREVOKED");
  EXPECT_TRUE(lines[1].starts_with("box\t20")) << lines[1];
  EXPECT_TRUE(lines[1].ends_with("\tnever\tyes")) << lines[1];
  // The keys are in no file of the directory.
  EXPECT_EQ(out.str().find(key2.substr(3)), std::string::npos);

  // A running gateway holds the LOCK: the command says to use --server.
  {
    std::unique_ptr<KvStore> held;
    ASSERT_TRUE(OpenRocksStore(dir.path(), {}, &held).ok());
    err.str("");
    EXPECT_EQ(RunGatewayCli({"device", "list", "--data-dir", dir.path()}, out, err, nullptr),
              kExitFailure);
    EXPECT_NE(err.str().find("the gateway is running; use --server"), std::string::npos)
        << err.str();
  }
}

TEST(DeviceCliTest, CaFileGoesWithServerOnly) {
  testing_util::TempDir dir;
  std::ostringstream out, err;
  EXPECT_EQ(RunGatewayCli({"device", "list", "--data-dir", dir.path(), "--ca-file", "ca.pem"}, out,
                          err, nullptr),
            kExitUsage);
  EXPECT_NE(err.str().find("--ca-file goes with --server"), std::string::npos) << err.str();
  // Given with --server, it is the TLS client's: a CA file that cannot be read fails the call.
  err.str("");
  {
    std::ofstream token(dir / "token");
    token << "admin-token-0123456789\n";
  }
  EXPECT_EQ(RunGatewayCli({"device", "list", "--server", "https://127.0.0.1:1",
                           "--admin-token-file", dir / "token", "--ca-file", dir / "missing.pem"},
                          out, err, nullptr),
            kExitFailure);
  EXPECT_NE(err.str().find("missing.pem"), std::string::npos) << err.str();
}

TEST(DeviceCliTest, RefusesWhatIsNotAGatewayDir) {
  testing_util::TempDir dir;
  std::ostringstream out, err;
  EXPECT_EQ(RunGatewayCli({"device", "list", "--data-dir", dir / "missing"}, out, err, nullptr),
            kExitFailure);
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir / "agent", {}, &kv).ok());
    WriteBatch b;
    b.Put("something", "else");
    ASSERT_TRUE(kv->Write(b, true).ok());
  }
  err.str("");
  EXPECT_EQ(RunGatewayCli({"device", "list", "--data-dir", dir / "agent"}, out, err, nullptr),
            kExitFailure);
  EXPECT_NE(err.str().find("not a ccmon-gateway"), std::string::npos) << err.str();
}

TEST(DeviceCliTest, UsageErrors) {
  std::ostringstream out, err;
  auto run = [&](std::vector<std::string> args) { return RunGatewayCli(args, out, err, nullptr); };
  EXPECT_EQ(run({"device"}), kExitUsage);
  EXPECT_EQ(run({"device", "frob"}), kExitUsage);
  EXPECT_EQ(run({"device", "add"}), kExitUsage);
  EXPECT_EQ(run({"device", "add", "bad name", "--data-dir", "/tmp"}), kExitUsage);
  EXPECT_EQ(run({"device", "add", "..", "--data-dir", "/tmp"}), kExitUsage);
  EXPECT_EQ(run({"device", "add", "x"}), kExitUsage);  // neither --server nor --data-dir
  EXPECT_EQ(run({"device", "add", "x", "--server", "http://a", "--data-dir", "/tmp"}), kExitUsage);
  EXPECT_EQ(run({"device", "list", "--data-dir", "/tmp", "--admin-token-file", "/f"}), kExitUsage);
  EXPECT_EQ(run({"device", "list", "--bogus", "1"}), kExitUsage);
  EXPECT_EQ(run({"device", "list", "--server"}), kExitUsage);
  EXPECT_EQ(run({"device", "--help"}), kExitOk);
}

TEST(DeviceCliTest, ServerModeWithoutATokenOrUnreachable) {
  testing_util::TempDir dir;
  std::ostringstream out, err;
  ::unsetenv("CCMON_GATEWAY_ADMIN_TOKEN");
  EXPECT_EQ(RunGatewayCli({"device", "list", "--server", "http://127.0.0.1:1"}, out, err, nullptr),
            kExitFailure);
  EXPECT_NE(err.str().find("admin token is empty"), std::string::npos) << err.str();
  err.str("");
  EXPECT_EQ(RunGatewayCli({"device", "list", "--server", "http://127.0.0.1:1", "--admin-token-file",
                           dir / "absent"},
                          out, err, nullptr),
            kExitFailure);
  EXPECT_NE(err.str().find("cannot read"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace ccmon::gateway
