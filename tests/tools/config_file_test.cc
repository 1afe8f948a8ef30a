#include "tools/common/config_file.h"

#include <gtest/gtest.h>

namespace ccmon {
namespace {

ConfigKeyKind Kind(std::string_view key) {
  if (key == "url" || key == "max-future") return ConfigKeyKind::kSingle;
  if (key == "label") return ConfigKeyKind::kRepeatable;
  return ConfigKeyKind::kUnknown;
}

Status Parse(std::string_view text, std::vector<ConfigFileEntry>* out) {
  return ParseConfigFileEntries(text, "/etc/x.conf", Kind, out);
}

TEST(ConfigFileTest, KeysValuesCommentsAndOrigins) {
  std::vector<ConfigFileEntry> e;
  Status s = Parse(
      "# a comment\n"
      "\n"
      "   url   =  https://h/api/v1/write?a=b#frag  \r\n"
      "\t# indented comment\n"
      "label = team=a\n"
      "label = b=2\n"
      "max-future =\n",
      &e);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].key, "url");
  EXPECT_EQ(e[0].value, "https://h/api/v1/write?a=b#frag");  // '=' and '#' kept, CR dropped
  EXPECT_EQ(e[0].origin, "/etc/x.conf:3");
  EXPECT_EQ(e[1].value, "team=a");
  EXPECT_EQ(e[2].origin, "/etc/x.conf:6");
  EXPECT_EQ(e[3].key, "max-future");
  EXPECT_EQ(e[3].value, "");  // the caller decides whether empty is allowed
  ASSERT_TRUE(Parse("", &e).ok());
  EXPECT_TRUE(e.empty());
}

TEST(ConfigFileTest, ErrorsNameTheLineAndTheKeyAndLeaveTheOutputAlone) {
  std::vector<ConfigFileEntry> e = {{"keep", "me", "x"}};
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"url = a\nbogus = 1\n", "/etc/x.conf:2: unknown key 'bogus'"},
      {"url = a\n\nurl = b\n", "/etc/x.conf:3: key 'url' given twice"},
      {"url a\n", "/etc/x.conf:1: expected 'key = value', got 'url a'"},
      {"url = a\x01\n", "/etc/x.conf:1: control characters or invalid UTF-8"},
      {"url = \xff\xfe\n", "/etc/x.conf:1: control characters or invalid UTF-8"},
      {"= value\n", "/etc/x.conf:1: unknown key ''"},
  };
  for (const Case& c : cases) {
    Status s = Parse(c.text, &e);
    EXPECT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.message(), c.want);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].key, "keep");
  }
  // A secret value is never part of a message.
  Status s = Parse("url = dk_secret\nurl = dk_secret2\n", &e);
  EXPECT_EQ(s.message().find("dk_secret"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ccmon
