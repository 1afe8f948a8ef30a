#include "base/markup.h"

#include <gtest/gtest.h>

namespace ccmon {
namespace {

TEST(EscapeMarkupTest, TheFiveCharactersAreEntitiesAndNothingElseChanges) {
  EXPECT_EQ(EscapeMarkup(""), "");
  EXPECT_EQ(EscapeMarkup("plain-name_1.2 é"), "plain-name_1.2 é");
  EXPECT_EQ(EscapeMarkup("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  EXPECT_EQ(EscapeMarkup("&amp;"), "&amp;amp;");
  EXPECT_EQ(EscapeMarkup(std::string_view("a\0b", 3)), std::string("a\0b", 3));
}

}  // namespace
}  // namespace ccmon
