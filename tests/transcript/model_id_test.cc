// Model id normalisation (docs/accounting.md A27).
#include "transcript/model_id.h"

#include <gtest/gtest.h>

namespace ccmon {
namespace {

TEST(ModelId, A27_ProviderPrefixesAreDropped) {
  EXPECT_EQ(CanonicalModel("anthropic/claude-sonnet-4-5-20250929"), "claude-sonnet-4-5-20250929");
  EXPECT_EQ(CanonicalModel("bedrock/claude-opus-4-6"), "claude-opus-4-6");
  EXPECT_EQ(CanonicalModel("vertex_ai/claude-opus-4-6"), "claude-opus-4-6");
  // Only one routing prefix, only at the start.
  EXPECT_EQ(CanonicalModel("x/anthropic/claude-opus-4-6"), "x/anthropic/claude-opus-4-6");
}

TEST(ModelId, A27_BedrockIdsAreUnwrapped) {
  EXPECT_EQ(CanonicalModel("us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
            "claude-sonnet-4-5-20250929");
  EXPECT_EQ(CanonicalModel("eu.anthropic.claude-haiku-4-5-20251001-v1:0"),
            "claude-haiku-4-5-20251001");
  EXPECT_EQ(CanonicalModel("global.anthropic.claude-opus-4-6-v1"), "claude-opus-4-6");
  EXPECT_EQ(CanonicalModel("apac.anthropic.claude-3-haiku-20240307-v2:0"),
            "claude-3-haiku-20240307");
  EXPECT_EQ(CanonicalModel("anthropic.claude-3-5-haiku-20241022-v1:0"),
            "claude-3-5-haiku-20241022");
  EXPECT_EQ(CanonicalModel("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
            "claude-sonnet-4-5-20250929");
  // A "-v" that is not a version suffix stays.
  EXPECT_EQ(CanonicalModel("anthropic.claude-vx"), "claude-vx");
  EXPECT_EQ(CanonicalModel("anthropic.claude-x-v1:a"), "claude-x-v1:a");
}

TEST(ModelId, A27_VertexDateAndContextSuffix) {
  EXPECT_EQ(CanonicalModel("claude-sonnet-4-5@20250929"), "claude-sonnet-4-5-20250929");
  EXPECT_EQ(CanonicalModel("vertex_ai/claude-opus-4-5@20251101"), "claude-opus-4-5-20251101");
  EXPECT_EQ(CanonicalModel("claude-sonnet-4-5@latest"), "claude-sonnet-4-5@latest");
  EXPECT_EQ(CanonicalModel("claude-sonnet-4-5[1m]"), "claude-sonnet-4-5");
  EXPECT_EQ(CanonicalModel("claude-sonnet-4-5-20250929[1m]"), "claude-sonnet-4-5-20250929");
  EXPECT_EQ(CanonicalModel("anthropic/claude-opus-4-6[1m]"), "claude-opus-4-6");
}

TEST(ModelId, A27_OtherIdsAreUnchanged) {
  for (const char* id :
       {"claude-opus-4-6", "<synthetic>", "gpt-4o", "", "[1m]", "claude-unknown-9"}) {
    EXPECT_EQ(CanonicalModel(id), id);
  }
}

}  // namespace
}  // namespace ccmon
