// LineParser: what is a usage record (docs/accounting.md A6-A13, and the fields A14-A19 read).
// Every line goes through Parse, ParseReference and ParseFast; the helper checks that they agree.
#include "transcript/line_parser.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "transcript/line_parser_internal.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

using testing_util::Line;
using testing_util::Msg;
using testing_util::Own;
using testing_util::Owned;

// Real-shaped lines (claude-code-transcripts.md section 4, anonymised).
const std::string kSummary =
    R"J({"type":"summary","summary":"Fix flaky login test","leafUuid":"7dc49413-9085-4129-bdce-2e3beed562f1"})J";
const std::string kUser =
    R"J({"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/Users/USER/src/webapp","sessionId":"ed8cd0a3-962b-4a71-aebd-73edfe16cdd3","version":"1.0.128","gitBranch":"main","type":"user","message":{"role":"user","content":"the login test is flaky, please fix it"},"uuid":"18b7c636-19c0-4199-8f42-ee2f5e8d22a2","timestamp":"2025-09-28T06:17:20.153Z"})J";
const std::string kAssistant =
    R"J({"parentUuid":"18b7c636-19c0-4199-8f42-ee2f5e8d22a2","isSidechain":false,"userType":"external","cwd":"/Users/USER/src/webapp","sessionId":"ed8cd0a3-962b-4a71-aebd-73edfe16cdd3","version":"1.0.128","gitBranch":"main","message":{"id":"msg_013C6yBZTawT46T1EpQpWtGN","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Let me look at the test."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":4,"cache_creation_input_tokens":25277,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":25277,"ephemeral_1h_input_tokens":0},"output_tokens":6,"service_tier":"standard"}},"requestId":"req_011CTaJz5ss7W9GKaVmBxwTV","type":"assistant","uuid":"73820097-c377-4b90-997f-c6bbc6575f80","timestamp":"2025-09-28T06:17:23.678Z"})J";
const std::string kAssistantSpaced =
    "{ \"parentUuid\" : \"18b7c636-19c0-4199-8f42-ee2f5e8d22a2\" ,\t\"isSidechain\":false, "
    "\"userType\":\"external\",\r\"cwd\" :\"/Users/USER/src/webapp\", \"sessionId\": "
    "\"ed8cd0a3-962b-4a71-aebd-73edfe16cdd3\", \"version\":\"1.0.128\",\"gitBranch\":\"main\", "
    "\"message\" : { \"id\" : \"msg_013C6yBZTawT46T1EpQpWtGN\" , \"type\":\"message\", "
    "\"role\":\"assistant\", \"model\" : \"claude-sonnet-4-20250514\", \"content\" : [ { "
    "\"type\" : \"text\", \"text\":\"Let me look at the test.\" } ], \"stop_reason\": null, "
    "\"stop_sequence\":null, \"usage\" : { \"input_tokens\" : 4 , \"cache_creation_input_tokens\" "
    ": 25277, \"cache_read_input_tokens\":0, \"cache_creation\" : { "
    "\"ephemeral_5m_input_tokens\" : 25277, \"ephemeral_1h_input_tokens\" : 0 } , "
    "\"output_tokens\" : 6 , \"service_tier\" : \"standard\" } } , \"requestId\" : "
    "\"req_011CTaJz5ss7W9GKaVmBxwTV\" , \"type\" : \"assistant\" , \"uuid\" : "
    "\"73820097-c377-4b90-997f-c6bbc6575f80\" , \"timestamp\" : \"2025-09-28T06:17:23.678Z\" } ";
// Same record, keys in another order (as newer versions write: message first, type late).
const std::string kAssistantReordered =
    R"J({"timestamp":"2025-09-28T06:17:23.678Z","type":"assistant","message":{"usage":{"output_tokens":6,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":25277},"cache_read_input_tokens":0,"cache_creation_input_tokens":25277,"input_tokens":4,"service_tier":"standard"},"content":[{"text":"Let me look at the test.","type":"text"}],"model":"claude-sonnet-4-20250514","role":"assistant","type":"message","id":"msg_013C6yBZTawT46T1EpQpWtGN"},"requestId":"req_011CTaJz5ss7W9GKaVmBxwTV","sessionId":"ed8cd0a3-962b-4a71-aebd-73edfe16cdd3","cwd":"/Users/USER/src/webapp","isSidechain":false,"uuid":"73820097-c377-4b90-997f-c6bbc6575f80"})J";
const std::string kOpusToolUse =
    R"J({"parentUuid":"9a27c40f-0000","isSidechain":false,"message":{"model":"claude-opus-4-7","id":"msg_01UwNtAbc","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_01Read","name":"Read","input":{"file_path":"/Users/USER/src/webapp/tests/login.spec.ts"}}],"stop_reason":"tool_use","usage":{"input_tokens":6,"cache_creation_input_tokens":8837,"cache_read_input_tokens":16410,"output_tokens":136,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":8837},"service_tier":"standard"}},"requestId":"req_011CaFyKabc","type":"assistant","uuid":"db6baab1-0000","timestamp":"2026-04-21T00:29:54.704Z","sessionId":"455218e7-0000","cwd":"/Users/USER/src/webapp","version":"2.1.114","userType":"external","entrypoint":"claude-vscode","gitBranch":"main"})J";
const std::string kToolUseResult =
    R"J({"parentUuid":"x","isSidechain":false,"cwd":"/Users/USER/src/webapp","sessionId":"455218e7-0000","version":"2.1.114","type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_02","type":"tool_result","content":[{"type":"text","text":"done"}]}]},"uuid":"u1","timestamp":"2026-04-21T00:31:02.511Z","toolUseResult":{"status":"completed","prompt":"p","agentId":"a6a6af7","content":[{"type":"text","text":"done"}],"totalDurationMs":15187,"totalTokens":8395,"totalToolUseCount":2,"usage":{"input_tokens":1,"cache_creation_input_tokens":2375,"cache_read_input_tokens":5519,"output_tokens":500,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":2375},"inference_geo":""}}})J";
const std::string kProgress =
    R"J({"parentUuid":"x","isSidechain":false,"type":"progress","data":{"type":"agent_progress","agentId":"a6a6af7","prompt":"p","message":{"type":"assistant","message":{"model":"claude-haiku-4-5-20251001","id":"msg_nested","role":"assistant","content":[{"type":"tool_use","id":"toolu_03","name":"Grep","input":{"pattern":"TODO"}}],"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}},"uuid":"u2","timestamp":"2026-04-21T00:30:20.004Z"}},"toolUseID":"agent_msg_1","parentToolUseID":"toolu_02","sessionId":"455218e7-0000","uuid":"u3","timestamp":"2026-04-21T00:30:20.010Z"})J";
const std::string kSidechain =
    R"J({"parentUuid":"e555250f-0000","isSidechain":true,"userType":"external","cwd":"/Users/USER/Desktop/proj","sessionId":"f0de89b8-0000","version":"2.1.29","gitBranch":"","agentId":"a6a6af7","slug":"parsed-herding-bird","message":{"id":"msg_sub1","type":"message","role":"assistant","model":"claude-opus-4-5-20251101","content":[{"type":"text","text":"ok"}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"cache_creation_input_tokens":166,"cache_read_input_tokens":10444,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":166},"output_tokens":25,"service_tier":"standard"}},"requestId":"req_011CXjydTj8wRHB1btWYDBCY","type":"assistant","uuid":"u4","timestamp":"2026-02-02T21:52:10.584Z"})J";
const std::string kSynthetic =
    R"J({"type":"assistant","isApiErrorMessage":true,"error":"rate_limit","apiErrorStatus":429,"message":{"id":"msg_synth1","model":"<synthetic>","role":"assistant","content":[{"type":"text","text":"You've hit your session limit · resets 2pm (Europe/Helsinki)"}],"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":0},"service_tier":null}},"sessionId":"s-synth","uuid":"u5","timestamp":"2026-09-23T10:31:00.000Z"})J";
const std::string kSnapshot =
    R"J({"type":"file-history-snapshot","messageId":"18b7c636-0000","snapshot":{"messageId":"18b7c636-0000","trackedFileBackups":{},"timestamp":"2025-09-28T06:17:20.153Z"},"isSnapshotUpdate":false})J";

// A minimal assistant line around a usage object (and optional extra top-level members).
std::string WithUsage(const std::string& usage, const std::string& extra_top = "",
                      const std::string& message_extra = "") {
  return R"J({"type":"assistant","sessionId":"s1","cwd":"/w/p",)J" + extra_top +
         R"J("message":{"id":"msg_1","model":"claude-sonnet-4-5-20250929",)J" + message_extra +
         R"J("usage":)J" + usage + R"J(},"requestId":"req_1","timestamp":"2025-09-28T06:17:23.678Z"})J";
}

class LineParserTest : public ::testing::Test {
 protected:
  // Runs Parse, ParseReference and ParseFast; Parse must equal the reference, and the fast path,
  // when it decides, must equal it too. Returns Parse's result.
  Owned Check(const std::string& line) {
    SCOPED_TRACE("line: " + line.substr(0, 300));
    ParsedLine out;
    parser_.Parse(line, &out);
    Owned parsed = Own(out);
    parser_.ParseReference(line, &out);
    Owned reference = Own(out);
    last_fast_decided_ = parser_.ParseFast(line, line.size(), &out);
    Owned fast = Own(out);
    EXPECT_EQ(parsed, reference);
    if (last_fast_decided_) {
      EXPECT_EQ(fast, reference);
    }
    return parsed;
  }
  Owned Reference(const std::string& line) {
    ParsedLine out;
    parser_.ParseReference(line, &out);
    return Own(out);
  }
  bool FastDecides(const std::string& line) {
    ParsedLine out;
    return parser_.ParseFast(line, line.size(), &out);
  }
  static bool FastSupported() { return line_parser_internal::FastPathSupported(); }
  void ExpectSkipped(const std::string& line, SkipReason reason) {
    Owned o = Check(line);
    EXPECT_EQ(o.kind, LineKind::kSkipped) << line.substr(0, 200);
    EXPECT_EQ(SkipReasonName(o.reason), SkipReasonName(reason)) << line.substr(0, 200);
  }

  LineParser parser_;
  bool last_fast_decided_ = false;
};

// ---- A6: what a usage record is -----------------------------------------------------------------

TEST_F(LineParserTest, A6_RealAssistantLineIsUsageWithAllFields) {
  Owned o = Check(kAssistant);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.id, "msg_013C6yBZTawT46T1EpQpWtGN");
  EXPECT_TRUE(o.has_request_id);
  EXPECT_EQ(o.request_id, "req_011CTaJz5ss7W9GKaVmBxwTV");
  EXPECT_EQ(o.model, "claude-sonnet-4-20250514");
  EXPECT_EQ(o.session, "ed8cd0a3-962b-4a71-aebd-73edfe16cdd3");
  EXPECT_EQ(o.cwd, "/Users/USER/src/webapp");
  EXPECT_EQ(o.timestamp_ms, 1759040243678);
  EXPECT_FALSE(o.sidechain);
  EXPECT_FALSE(o.api_error);
  EXPECT_FALSE(o.fast);
  EXPECT_FALSE(o.has_cost);
  EXPECT_EQ(o.web_search, 0u);
  EXPECT_EQ(o.tokens, (TokenCounts{4, 6, 25277, 0, 0}));
  EXPECT_TRUE(o.tools.empty());
  if (FastSupported()) {
    EXPECT_TRUE(last_fast_decided_) << "the fast path should decide real lines";
  }
}

TEST_F(LineParserTest, A6_WhitespaceNeverMatters) {
  Owned compact = Check(kAssistant);
  Owned spaced = Check(kAssistantSpaced);
  EXPECT_EQ(spaced, compact);
  // Leading/trailing JSON whitespace and a trailing '\r' (A3: '\r' is a byte of the line).
  EXPECT_EQ(Check(" \t" + kAssistant + "\r"), compact);
}

TEST_F(LineParserTest, A6_KeyOrderDoesNotMatter) {
  EXPECT_EQ(Check(kAssistantReordered), Check(kAssistant));
}

TEST_F(LineParserTest, A6_DuplicateKeysLastOccurrenceWins) {
  // "type" repeated: the last one decides.
  std::string to_assistant = R"J({"type":"user",)J" + kAssistant.substr(1);
  EXPECT_EQ(Check(to_assistant).kind, LineKind::kUsage);
  std::string to_user = kAssistant.substr(0, kAssistant.size() - 1) + R"J(,"type":"user"})J";
  EXPECT_EQ(Check(to_user).kind, LineKind::kOther);

  // usage fields repeated.
  Owned o = Check(WithUsage(R"J({"input_tokens":1,"output_tokens":2,"input_tokens":7})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{7, 2, 0, 0, 0}));

  // The whole usage object repeated: nothing of the first one survives.
  o = Check(WithUsage(R"J({"input_tokens":1,"cache_read_input_tokens":100,"speed":"fast"},"usage":{"output_tokens":9})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{0, 9, 0, 0, 0}));
  EXPECT_FALSE(o.fast);

  // message.id, requestId, timestamp, sessionId repeated.
  o = Check(R"J({"type":"assistant","sessionId":"s1","sessionId":"s2","requestId":"r1","message":{"id":"m1","id":"m2","model":"claude-x","usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z","requestId":"r2","timestamp":"2025-01-01T00:00:01Z"})J");
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.id, "m2");
  EXPECT_EQ(o.request_id, "r2");
  EXPECT_EQ(o.session, "s2");
  EXPECT_EQ(o.timestamp_ms, 1735689601000);

  // The whole message repeated: the second one (without usage) wins.
  o = Check(R"J({"type":"assistant","message":{"id":"m1","usage":{"input_tokens":1}},"message":{"id":"m2"},"timestamp":"2025-01-01T00:00:00Z"})J");
  EXPECT_EQ(o.kind, LineKind::kOther);
  // A repeated requestId that is not a string removes it.
  o = Check(R"J({"type":"assistant","requestId":"r1","requestId":null,"message":{"id":"m1","usage":{}},"timestamp":"2025-01-01T00:00:00Z"})J");
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_FALSE(o.has_request_id);
}

// BUG (found by this test; fails at commit 7310f4b, fixed by the uncommitted line_parser.cc change
// that makes RefHandler::Open treat a container as a wrong-typed value): the reference path ignored
// a repeated key whose last value is an object or array when the earlier value was a string/bool
// (Open pushed a kSkip frame and left the earlier scalar in place), so the first occurrence won
// there, while the fast path (correctly, per A6) lets the last one win.
TEST_F(LineParserTest, A6_DuplicateKeyWhoseLastValueIsAContainerWins) {
  // "type" ends as an object: not an assistant line.
  std::string type_obj = kAssistant.substr(0, kAssistant.size() - 1) + R"J(,"type":{"x":1}})J";
  EXPECT_EQ(Reference(type_obj).kind, LineKind::kOther);
  EXPECT_EQ(Check(type_obj).kind, LineKind::kOther);
  // requestId ends as an array: no requestId.
  std::string req_arr = kAssistant.substr(0, kAssistant.size() - 1) + R"J(,"requestId":[1]})J";
  EXPECT_FALSE(Reference(req_arr).has_request_id);
  EXPECT_FALSE(Check(req_arr).has_request_id);
  // speed ends as an object: not fast.
  std::string speed_obj = WithUsage(R"J({"input_tokens":1,"speed":"fast","speed":{}})J");
  EXPECT_FALSE(Reference(speed_obj).fast);
  EXPECT_FALSE(Check(speed_obj).fast);
}

TEST_F(LineParserTest, A6_NonAssistantLinesAreOther) {
  for (const std::string& l : {kSummary, kUser, kSnapshot,
                               std::string(R"J({"type":"system","subtype":"compact_boundary","compactMetadata":{"preTokens":120000},"timestamp":"2025-09-28T06:17:20.153Z"})J"),
                               std::string("{}")}) {
    Owned o = Check(l);
    EXPECT_EQ(o.kind, LineKind::kOther) << l;
  }
  // "type" must be the string "assistant".
  EXPECT_EQ(Check(R"J({"type":"Assistant","message":{"id":"m","usage":{}},"timestamp":"2025-01-01T00:00:00Z"})J").kind,
            LineKind::kOther);
  EXPECT_EQ(Check(R"J({"type":null,"message":{"id":"m","usage":{}},"timestamp":"2025-01-01T00:00:00Z"})J").kind,
            LineKind::kOther);
}

TEST_F(LineParserTest, A6_UsageMustBeAnObjectAtMessageUsage) {
  for (const char* usage : {"null", "[]", "[{\"input_tokens\":5}]", "5", "\"x\"", "true"}) {
    Owned o = Check(WithUsage(usage));
    EXPECT_EQ(o.kind, LineKind::kOther) << usage;
  }
  // message that is not an object.
  EXPECT_EQ(Check(R"J({"type":"assistant","message":"hello","timestamp":"2025-01-01T00:00:00Z"})J").kind,
            LineKind::kOther);
  // An empty usage object is a record with zero tokens.
  Owned o = Check(WithUsage("{}"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, TokenCounts{});
}

// ---- A7: usage elsewhere ------------------------------------------------------------------------

TEST_F(LineParserTest, A7_ToolUseResultUsageIsNotARecord) {
  Owned o = Check(kToolUseResult);
  EXPECT_EQ(o.kind, LineKind::kOther);
  // Even on an assistant line, top-level usage (not under message) is not a record.
  EXPECT_EQ(Check(R"J({"type":"assistant","usage":{"input_tokens":5},"message":{"id":"m1"},"timestamp":"2025-01-01T00:00:00Z"})J").kind,
            LineKind::kOther);
  EXPECT_EQ(Check(R"J({"type":"assistant","toolUseResult":{"usage":{"input_tokens":5}},"message":{"id":"m1"},"timestamp":"2025-01-01T00:00:00Z"})J").kind,
            LineKind::kOther);
}

TEST_F(LineParserTest, A7_ProgressNestedUsageIsNotARecord) {
  Owned o = Check(kProgress);
  EXPECT_EQ(o.kind, LineKind::kOther);
  EXPECT_TRUE(o.tools.empty());
}

TEST_F(LineParserTest, A7_UsageInsideToolInputIsIgnored) {
  Msg m;
  m.tools = {{"toolu_01A", "Task"}};
  std::string line = Line(m);
  // Put a usage object inside the tool input.
  size_t at = line.find(R"J("input":{)J");
  ASSERT_NE(at, std::string::npos);
  line.insert(at + 9, R"J("usage":{"input_tokens":999,"output_tokens":999},"message":{"usage":{"input_tokens":5}},)J");
  Owned o = Check(line);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{4, 6, 0, 0, 0}));
  ASSERT_EQ(o.tools.size(), 1u);
  EXPECT_EQ(o.tools[0].first, "toolu_01A");
  EXPECT_EQ(o.tools[0].second, "Task");
  // The same inside a user line's tool_use input: still not a record.
  EXPECT_EQ(Check(R"J({"type":"user","message":{"role":"user","content":[{"type":"tool_use","id":"t","name":"X","input":{"usage":{"input_tokens":5}}}]},"timestamp":"2025-01-01T00:00:00Z"})J").kind,
            LineKind::kOther);
}

// ---- A8: surrogates and UTF-8 -------------------------------------------------------------------

TEST_F(LineParserTest, A8_LoneSurrogateEscapeStillCounts) {
  for (const char* text : {R"(\ud83d)", R"(\udc00 tail)", R"(a\ud83d\ud83d b)", R"(\ud83d\ude00 pair)",
                           R"(\\ud83d literal)", R"(x\uD83D)", R"(end \ud83d)"}) {
    std::string line = R"J({"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":")J" +
                       std::string(text) +
                       R"J("}],"usage":{"input_tokens":3,"output_tokens":4}},"timestamp":"2025-09-28T06:17:23.678Z"})J";
    Owned o = Check(line);
    ASSERT_EQ(o.kind, LineKind::kUsage) << text;
    EXPECT_EQ(o.tokens, (TokenCounts{3, 4, 0, 0, 0})) << text;
    EXPECT_EQ(o.id, "msg_1");
  }
  // A lone surrogate inside a value the record uses (the model name) does not drop the line.
  Owned o = Check(R"J({"type":"assistant","message":{"id":"msg_1","model":"claude-\ud83d","usage":{"input_tokens":3}},"timestamp":"2025-09-28T06:17:23.678Z"})J");
  EXPECT_EQ(o.kind, LineKind::kUsage);
}

TEST_F(LineParserTest, A8_RawInvalidUtf8MakesTheLineInvalid) {
  for (const std::string& bad : {std::string("\xff"), std::string("\xc0\xaf"), std::string("\xe2\x80"),
                                std::string("\xed\xa0\x80"), std::string("\xf8\x88\x80\x80\x80"),
                                std::string("\x80")}) {
    std::string line = R"J({"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"a)J" +
                       bad + R"J(b"}],"usage":{"input_tokens":3}},"timestamp":"2025-09-28T06:17:23.678Z"})J";
    ExpectSkipped(line, SkipReason::kInvalidUtf8);
    EXPECT_FALSE(FastDecides(line));
  }
  // Invalid UTF-8 on a non-usage line is skipped too (the line is not valid JSON text).
  ExpectSkipped("{\"type\":\"user\",\"x\":\"\xfe\"}", SkipReason::kInvalidUtf8);
  // Valid multi-byte UTF-8 is fine, including U+2028/U+2029/U+0085 raw inside a string.
  Owned o = Check("{\"type\":\"assistant\",\"message\":{\"id\":\"msg_\xc3\xa9\",\"content\":[{\"type\":\"text\",\"text\":\"a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xc2\x85" "d\xf0\x9f\x98\x80\"}],\"usage\":{\"input_tokens\":3}},\"timestamp\":\"2025-09-28T06:17:23.678Z\"}");
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.id, "msg_\xc3\xa9");
}

// ---- A9: token counts ---------------------------------------------------------------------------

TEST_F(LineParserTest, A9_AbsentAndNullFieldsAreZero) {
  Owned o = Check(WithUsage(R"J({"input_tokens":null,"output_tokens":3,"cache_creation_input_tokens":null,"cache_read_input_tokens":null,"cache_creation":null,"server_tool_use":null,"speed":null,"service_tier":null})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{0, 3, 0, 0, 0}));
  EXPECT_EQ(o.web_search, 0u);
  EXPECT_FALSE(o.fast);
  o = Check(WithUsage(R"J({"output_tokens":3,"cache_creation":{"ephemeral_5m_input_tokens":null,"ephemeral_1h_input_tokens":7}})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{0, 3, 0, 7, 0}));
}

TEST_F(LineParserTest, A9_IntegralFloatTokensAreAccepted) {
  Owned o = Check(WithUsage(R"J({"input_tokens":5.0,"output_tokens":1e2,"cache_read_input_tokens":0.0,"cache_creation_input_tokens":2.50e1})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{5, 100, 25, 0, 0}));
  o = Check(WithUsage(R"J({"input_tokens":4294967295})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens.input, 4294967295ull);
}

TEST_F(LineParserTest, A9_CountsOf2To32OrMoreAreBadUsage) {
  for (const char* v : {"4294967296", "18446744073709551615", "4294967296.0", "1e10"}) {
    ExpectSkipped(WithUsage(std::string(R"J({"input_tokens":)J") + v + "}"), SkipReason::kBadUsage);
  }
}

TEST_F(LineParserTest, A9_BadTokenCountsSkipTheLine) {
  for (const char* field : {"input_tokens", "output_tokens", "cache_creation_input_tokens",
                            "cache_read_input_tokens"}) {
    for (const char* value : {"-1", "5.5", "\"5\"", "true", "{}", "[1]", "1e300", "-0.5",
                              "18446744073709551616"}) {
      std::string usage = std::string(R"J({"output_tokens":1,")J") + field + "\":" + value + "}";
      SCOPED_TRACE(usage);
      ExpectSkipped(WithUsage(usage), SkipReason::kBadUsage);
    }
  }
  ExpectSkipped(WithUsage(R"J({"cache_creation":{"ephemeral_5m_input_tokens":-3}})J"), SkipReason::kBadUsage);
  ExpectSkipped(WithUsage(R"J({"cache_creation":{"ephemeral_1h_input_tokens":1.5}})J"), SkipReason::kBadUsage);
  ExpectSkipped(WithUsage(R"J({"server_tool_use":{"web_search_requests":-1}})J"), SkipReason::kBadUsage);
  // The negative count is reported as bad_usage even when id and timestamp are missing too.
  ExpectSkipped(R"J({"type":"assistant","message":{"usage":{"input_tokens":-1}}})J", SkipReason::kBadUsage);
}

// ---- A10: id and timestamp ----------------------------------------------------------------------

TEST_F(LineParserTest, A10_MissingMessageIdIsSkipped) {
  ExpectSkipped(R"J({"type":"assistant","message":{"model":"claude-x","usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z"})J",
                SkipReason::kMissingId);
  ExpectSkipped(R"J({"type":"assistant","message":{"id":null,"usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z"})J",
                SkipReason::kMissingId);
  ExpectSkipped(R"J({"type":"assistant","message":{"id":12345,"usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z"})J",
                SkipReason::kMissingId);
  ExpectSkipped(R"J({"type":"assistant","message":{"id":"","usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z"})J",
                SkipReason::kMissingId);
  // A top-level "id" is not message.id; missing id wins over a bad timestamp.
  ExpectSkipped(R"J({"type":"assistant","id":"m1","message":{"usage":{"input_tokens":1}}})J", SkipReason::kMissingId);
}

TEST_F(LineParserTest, A10_BadTimestampIsSkipped) {
  const std::string head = R"J({"type":"assistant","message":{"id":"m1","usage":{"input_tokens":1}})J";
  ExpectSkipped(head + "}", SkipReason::kBadTimestamp);
  for (const char* ts : {R"("2025-09-28T06:17:23.678")", R"("2025-09-28")", R"("yesterday")", "1759040243678",
                         "null", R"("")", R"("2025-13-28T06:17:23Z")", R"("2025-09-28T06:17:23.678Zjunk")"}) {
    SCOPED_TRACE(ts);
    ExpectSkipped(head + R"J(,"timestamp":)J" + ts + "}", SkipReason::kBadTimestamp);
  }
  Owned o = Check(head + R"J(,"timestamp":"2025-09-28T08:17:23.678+02:00"})J");
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.timestamp_ms, 1759040243678);
}

// ---- A11: skip reasons --------------------------------------------------------------------------

TEST(SkipReasons, A11_StableReasonNames) {
  ASSERT_EQ(kSkipReasonCount, 9);
  const char* names[] = {"empty", "invalid_json", "invalid_utf8", "not_object", "bad_usage",
                         "missing_id", "bad_timestamp", "too_long", "incomplete"};
  for (int i = 0; i < kSkipReasonCount; ++i) EXPECT_EQ(SkipReasonName(SkipReason(i)), names[i]);
}

TEST_F(LineParserTest, A11_EmptyLines) {
  for (const std::string& l : {std::string(""), std::string(" "), std::string("\t \t"), std::string("\r")}) {
    ParsedLine out;
    parser_.Parse(l, &out);
    EXPECT_EQ(out.kind, LineKind::kSkipped);
    EXPECT_EQ(out.skip_reason, SkipReason::kEmpty) << "'" << l << "'";
  }
}

TEST_F(LineParserTest, A11_InvalidJson) {
  std::string truncated = kAssistant.substr(0, kAssistant.size() / 2);
  for (const std::string& l :
       {std::string("hello world"), std::string("{"), truncated, std::string("\0\0\0\0", 4),
        std::string(R"J({"a":1} x)J"), std::string(R"J({"a":1}{"b":2})J"), std::string(R"J({"a":1,})J"),
        std::string(R"J({'a':1})J"), std::string(R"J({"type":NaN})J"),
        kAssistant + "}", kAssistant + ",", std::string("{\"a\":\"x\0y\"}", 11)}) {
    SCOPED_TRACE(testing_util::Printable(l.substr(0, 80)));
    ExpectSkipped(l, SkipReason::kInvalidJson);
    EXPECT_FALSE(FastDecides(l));
  }
}

TEST_F(LineParserTest, A11_NotObject) {
  for (const char* l : {"[1,2]", "[]", R"("just a string")", "42", "null", "true", "-1.5"}) {
    SCOPED_TRACE(l);
    ExpectSkipped(l, SkipReason::kNotObject);
  }
}

TEST_F(LineParserTest, A11_TruncatedUsageLineIsInvalidJsonNotUsage) {
  // Cut inside the usage object: never a partial usage record.
  size_t cut = kAssistant.find("\"output_tokens\"");
  ExpectSkipped(kAssistant.substr(0, cut), SkipReason::kInvalidJson);
}

// ---- A12: the two paths -------------------------------------------------------------------------

TEST_F(LineParserTest, A12_PathsAgreeOnRealShapedCorpus) {
  std::vector<std::string> corpus = {kSummary, kUser, kAssistant, kAssistantSpaced, kAssistantReordered,
                                     kOpusToolUse, kToolUseResult, kProgress, kSidechain, kSynthetic,
                                     kSnapshot};
  Msg m;
  corpus.push_back(Line(m));
  m.request_id.reset();
  m.speed = "fast";
  m.web_search = 2;
  m.split = std::make_pair(uint64_t(10), uint64_t(20));
  m.cost_usd = "0.0123";
  m.tools = {{"toolu_a", "Bash"}, {"toolu_b", "Edit"}};
  m.sidechain = true;
  corpus.push_back(Line(m));
  for (const auto& l : corpus) {
    Check(l);
    if (FastSupported() && l != kAssistantSpaced) {  // spaced lines may fall back; that is fine
      EXPECT_TRUE(last_fast_decided_) << "a real-shaped line should be decided by the fast path: " << l;
    }
  }
}

TEST_F(LineParserTest, A12_FastPathNeverAssignsSkipReasons) {
  for (const std::string& l : {std::string("[1]"), std::string("{"), WithUsage(R"J({"input_tokens":-1})J"),
                              std::string(R"J({"type":"assistant","message":{"usage":{}}})J"),
                              std::string(R"J({"type":"assistant","message":{"id":"m","usage":{}}})J")}) {
    ParsedLine out;
    EXPECT_FALSE(parser_.ParseFast(l, l.size(), &out)) << l;
  }
}

TEST_F(LineParserTest, A12_MalformedInsideUnreadValueIsTheKnownDifference) {
  Msg m;
  m.tools = {{"toolu_x", "Tool"}};
  std::string line = Line(m);
  size_t at = line.find(R"J("input":{)J");
  ASSERT_NE(at, std::string::npos);
  line.insert(at + 9, R"J("list":[1,,2],)J");
  // The reference path rejects the line...
  Owned ref = Reference(line);
  EXPECT_EQ(ref.kind, LineKind::kSkipped);
  EXPECT_EQ(ref.reason, SkipReason::kInvalidJson);
  if (!FastSupported()) GTEST_SKIP() << "no AVX2: the fast path is off";
  // ...the fast path does not look inside the tool input and accepts it (documented in A12).
  ParsedLine out;
  ASSERT_TRUE(parser_.ParseFast(line, line.size(), &out));
  EXPECT_EQ(out.kind, LineKind::kUsage);
  parser_.Parse(line, &out);
  EXPECT_EQ(out.kind, LineKind::kUsage);
  EXPECT_EQ(out.tokens, (TokenCounts{4, 6, 0, 0, 0}));
}

TEST_F(LineParserTest, A12_MalformedScalarInUnreadMemberIsTheKnownDifference) {
  // Not JSON (NaN, a leading zero) in a member the fast path does not read.
  // "type" is looked at, but only its JSON type: a number there is not validated either.
  for (const char* l : {R"J({"a":NaN})J", R"J({"a":01})J", R"J({"type":01})J"}) {
    Owned ref = Reference(l);
    EXPECT_EQ(ref.kind, LineKind::kSkipped) << l;
    EXPECT_EQ(ref.reason, SkipReason::kInvalidJson) << l;
    if (!FastSupported()) continue;
    ParsedLine out;
    EXPECT_TRUE(parser_.ParseFast(l, std::strlen(l), &out)) << l;
    EXPECT_EQ(out.kind, LineKind::kOther) << l;
  }
}

TEST_F(LineParserTest, A12_ZeroCopyWithPaddingGivesSameResult) {
  // A line inside a larger buffer with >= kPadding readable bytes after it (the reader's case).
  std::string buf = kOpusToolUse + "\n" + kUser + std::string(LineParser::kPadding, ' ');
  std::string_view line(buf.data(), kOpusToolUse.size());
  ParsedLine out;
  parser_.Parse(line, buf.size(), &out);
  Owned zero_copy = Own(out);
  EXPECT_EQ(zero_copy, Check(kOpusToolUse));
  EXPECT_EQ(zero_copy.kind, LineKind::kUsage);
}

TEST_F(LineParserTest, A12_ViewsSurviveUntilNextParse) {
  ParsedLine out;
  std::string line = kOpusToolUse;
  parser_.Parse(line, &out);
  Owned first = Own(out);
  parser_.ParseReference(line, &out);
  EXPECT_EQ(Own(out), first);
  // Destroying the source after a reference parse must not matter (the views are kept copies).
  std::string tmp = kSidechain;
  parser_.ParseReference(tmp, &out);
  Owned want = Own(out);
  std::fill(tmp.begin(), tmp.end(), 'x');
  EXPECT_EQ(Own(out), want);
}

// ---- A13: lines over the fast-path size ---------------------------------------------------------

TEST(LineParserBigLines, A13_LongLineWithoutUsageIsShapeCheckedOnly) {
  LineParser parser(/*fast_path_max_bytes=*/1024);
  const std::string pad(2000, 'x');
  // Well-formed: other.
  std::string user = R"J({"type":"user","message":{"role":"user","content":")J" + pad + R"J("}})J";
  ParsedLine out;
  parser.Parse(user, &out);
  EXPECT_EQ(out.kind, LineKind::kOther);
  // Malformed inside, but {...}: still other (not parsed); the reference would say invalid_json.
  std::string broken = R"J({"type":"user", broken )J" + pad + " }";
  parser.Parse(broken, &out);
  EXPECT_EQ(out.kind, LineKind::kOther);
  parser.ParseReference(broken, &out);
  EXPECT_EQ(out.skip_reason, SkipReason::kInvalidJson);
  // Arrays: not_object; anything else: invalid_json; bad bytes: invalid_utf8.
  parser.Parse("[\"" + pad + "\"]", &out);
  EXPECT_EQ(out.kind, LineKind::kSkipped);
  EXPECT_EQ(out.skip_reason, SkipReason::kNotObject);
  parser.Parse(pad, &out);
  EXPECT_EQ(out.kind, LineKind::kSkipped);
  EXPECT_EQ(out.skip_reason, SkipReason::kInvalidJson);
  parser.Parse("{\"a\":\"" + pad + "\xff\"}", &out);
  EXPECT_EQ(out.kind, LineKind::kSkipped);
  EXPECT_EQ(out.skip_reason, SkipReason::kInvalidUtf8);
  // Surrounding whitespace is trimmed for the shape check.
  parser.Parse("  " + user + " \t", &out);
  EXPECT_EQ(out.kind, LineKind::kOther);
}

TEST(LineParserBigLines, A13_LongLineWithUsageIsFullyParsed) {
  LineParser small(/*fast_path_max_bytes=*/1024);
  LineParser normal;
  Msg m;
  m.split = std::make_pair(uint64_t(100), uint64_t(23));
  m.cache_creation = 123;
  std::string line = Line(m);
  line.insert(line.find("Let me look"), std::string(3000, 'y'));
  ASSERT_GT(line.size(), 1024u);
  Owned big = testing_util::ParseOwned(small, line);
  Owned fast = testing_util::ParseOwned(normal, line);
  ASSERT_EQ(big.kind, LineKind::kUsage);
  EXPECT_EQ(big, fast);
  EXPECT_EQ(big.tokens, (TokenCounts{4, 6, 100, 23, 0}));
  // Over the size, a malformed usage line gets its real reason.
  std::string bad = WithUsage(R"J({"input_tokens":-4})J", R"J("pad":")J" + std::string(2000, 'p') + "\",");
  EXPECT_EQ(testing_util::ParseOwned(small, bad).reason, SkipReason::kBadUsage);
  // "usage" only inside a text value: parsed, and it is not a record.
  std::string talk = R"J({"type":"user","message":{"role":"user","content":"my \"usage\" )J" +
                     std::string(2000, 'u') + R"J("}})J";
  Owned t = testing_util::ParseOwned(small, talk);
  EXPECT_EQ(t.kind, LineKind::kOther);
  // ... and if such a line is malformed, it gets a reason (it was parsed).
  std::string talk_broken = R"J({"type":"user", "usage" )J" + std::string(2000, 'u') + "}";
  Owned tb = testing_util::ParseOwned(small, talk_broken);
  EXPECT_EQ(tb.kind, LineKind::kSkipped);
  EXPECT_EQ(tb.reason, SkipReason::kInvalidJson);
}

TEST(LineParserBigLines, A13_EscapedUsageKeyIsNotRecognisedInLongLines) {
  LineParser small(/*fast_path_max_bytes=*/1024);
  std::string short_line = WithUsage(R"J({"input_tokens":5})J");
  size_t k = short_line.find("\"usage\"");
  short_line.replace(k, 7, R"J("us\u0061ge")J");
  // Short: parsed outright, the escaped key is the key "usage".
  Owned s = testing_util::ParseOwned(small, short_line);
  ASSERT_EQ(s.kind, LineKind::kUsage);
  EXPECT_EQ(s.tokens.input, 5u);
  // Long: the pre-filter does not see "usage" and the line is not parsed.
  std::string long_line = short_line;
  long_line.insert(1, R"J("pad":")J" + std::string(2000, 'p') + "\",");
  EXPECT_EQ(testing_util::ParseOwned(small, long_line).kind, LineKind::kOther);
  EXPECT_FALSE(MayHoldUsage(long_line));
  EXPECT_TRUE(MayHoldUsage(R"J({"usage":1})J"));
}

TEST(LineParserBigLines, A13_SizeBoundaryIsInclusive) {
  LineParser parser(/*fast_path_max_bytes=*/1024);
  // A malformed {...} line without "usage": exactly at the size it is parsed (invalid_json),
  // one byte over it is only shape-checked (other).
  auto make = [](size_t n) {
    std::string l = "{\"a\" ";
    l += std::string(n - l.size() - 1, 'z');
    l += "}";
    return l;
  };
  ParsedLine out;
  std::string at = make(1024);
  ASSERT_EQ(at.size(), 1024u);
  parser.Parse(at, &out);
  EXPECT_EQ(out.kind, LineKind::kSkipped);
  EXPECT_EQ(out.skip_reason, SkipReason::kInvalidJson);
  std::string over = make(1025);
  parser.Parse(over, &out);
  EXPECT_EQ(out.kind, LineKind::kOther);
}

TEST(LineParserBigLines, A13_OverOneMiBWithDefaultParser) {
  LineParser parser;
  ASSERT_EQ(LineParser::kDefaultFastPathMaxBytes, size_t(1) << 20);
  Msg m;
  m.input = 11;
  m.output = 22;
  std::string line = Line(m);
  line.insert(line.find("Let me look"), std::string((1 << 20) + 100, 'q'));
  Owned o = testing_util::ParseOwned(parser, line);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{11, 22, 0, 0, 0}));
  std::string tool_result = R"J({"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":")J" +
                            std::string((1 << 20) + 100, 'r') + R"J("}]}})J";
  EXPECT_EQ(testing_util::ParseOwned(parser, tool_result).kind, LineKind::kOther);
}

// ---- Fields the ledger and pricing read (A14-A19, A25) -------------------------------------------

TEST_F(LineParserTest, A14_SyntheticLineIsParsedAsUsageMarkedSynthetic) {
  ParsedLine out;
  parser_.Parse(kSynthetic, &out);
  ASSERT_EQ(out.kind, LineKind::kUsage);
  EXPECT_TRUE(out.IsSynthetic());
  EXPECT_TRUE(out.is_api_error);
  EXPECT_FALSE(out.has_request_id);
  EXPECT_EQ(out.message_id, "msg_synth1");
  Check(kSynthetic);
  // A real model is not synthetic.
  parser_.Parse(kAssistant, &out);
  EXPECT_FALSE(out.IsSynthetic());
}

TEST_F(LineParserTest, A15_ApiErrorFlagOnlyWhenTrue) {
  Msg m;
  m.api_error = true;
  Owned o = Check(Line(m));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_TRUE(o.api_error);
  std::string l = Line(m);
  l.replace(l.find("\"isApiErrorMessage\":true"), 24, "\"isApiErrorMessage\":\"yes\"");
  EXPECT_FALSE(Check(l).api_error);
}

TEST_F(LineParserTest, A16_RequestIdPresenceAndType) {
  Msg m;
  EXPECT_TRUE(Check(Line(m)).has_request_id);
  m.request_id.reset();
  Owned o = Check(Line(m));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_FALSE(o.has_request_id);
  EXPECT_EQ(o.request_id, "");
  for (const char* v : {"null", "12", "{}", "[]"}) {
    std::string line = WithUsage("{}", std::string(R"J("requestId":)J") + v + ",");
    const std::string own_req = R"J(,"requestId":"req_1")J";
    line.erase(line.find(own_req), own_req.size());
    Owned r = Check(line);
    ASSERT_EQ(r.kind, LineKind::kUsage) << line;
    EXPECT_FALSE(r.has_request_id) << v;
  }
  m.request_id = "";
  o = Check(Line(m));
  EXPECT_TRUE(o.has_request_id);  // an empty string is still a string
}

TEST_F(LineParserTest, A17_SpeedWebSearchAndSidechain) {
  Msg m;
  m.speed = "fast";
  m.web_search = 3;
  m.sidechain = true;
  Owned o = Check(Line(m));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_TRUE(o.fast);
  EXPECT_EQ(o.web_search, 3u);
  EXPECT_TRUE(o.sidechain);
  m.speed = "standard";
  EXPECT_FALSE(Check(Line(m)).fast);
  m.speed = "FAST";
  EXPECT_FALSE(Check(Line(m)).fast);
  // speed outside usage does not count.
  EXPECT_FALSE(Check(WithUsage("{}", R"J("speed":"fast",)J")).fast);
  EXPECT_EQ(Check(kSidechain).sidechain, true);
}

TEST_F(LineParserTest, A19_CacheCreationSplit) {
  // Object present: the split decides (even when it disagrees with the total).
  Owned o = Check(WithUsage(R"J({"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":30,"ephemeral_1h_input_tokens":70}})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 30, 70, 0}));
  // Object first, total after: same.
  o = Check(WithUsage(R"J({"cache_creation":{"ephemeral_1h_input_tokens":70},"cache_creation_input_tokens":100})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 0, 70, 0}));
  // Empty object: the split is present and empty.
  o = Check(WithUsage(R"J({"cache_creation_input_tokens":100,"cache_creation":{}})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 0, 0, 0}));
  // Absent or null: all writes are 5m.
  o = Check(WithUsage(R"J({"cache_creation_input_tokens":100})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 100, 0, 0}));
  o = Check(WithUsage(R"J({"cache_creation_input_tokens":100,"cache_creation":null})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 100, 0, 0}));
  o = Check(WithUsage(R"J({"cache_creation":{"ephemeral_1h_input_tokens":70},"cache_creation":null,"cache_creation_input_tokens":100})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 100, 0, 0}));
  // The real opus line: 1h writes.
  o = Check(kOpusToolUse);
  EXPECT_EQ(o.tokens, (TokenCounts{6, 136, 0, 8837, 16410}));
}

TEST_F(LineParserTest, A25_CostUsdIsParsedAsExactDecimal) {
  struct Case {
    const char* token;
    Pico pico;
  } cases[] = {{"0.123456789", 123456789000}, {"0.0123", 12300000000}, {"1e-3", 1000000000},
               {"1.5E+1", 15000000000000}, {"0", 0}, {"2", 2000000000000}, {"0.000000000001", 1},
               {"1000000", 1000000 * kPicoPerUsd}};
  for (const Case& c : cases) {
    Msg m;
    m.cost_usd = c.token;
    Owned o = Check(Line(m));
    ASSERT_EQ(o.kind, LineKind::kUsage) << c.token;
    EXPECT_TRUE(o.has_cost) << c.token;
    EXPECT_EQ(o.cost, c.pico) << c.token;
  }
  // Not a number: no cost, still a record.
  Owned o = Check(WithUsage("{}", R"J("costUSD":"0.5",)J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_FALSE(o.has_cost);
  o = Check(WithUsage("{}", R"J("costUSD":null,)J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_FALSE(o.has_cost);
  // Negative or absurd (after the message member): the line is bad.
  for (const char* v : {"-0.5", "-1", "2000000", "2000000.5", "-0.0"}) {
    SCOPED_TRACE(v);
    std::string line = WithUsage("{}");
    line.insert(line.size() - 1, std::string(R"J(,"costUSD":)J") + v);
    ExpectSkipped(line, SkipReason::kBadUsage);
  }
}

// A bad costUSD is bad_usage whether it comes before or after "message" (A6: member order never
// matters; legacy lines put costUSD first). Regression: opening "message" used to clear the flag.
TEST_F(LineParserTest, A25_BadCostUsdIsBadWhateverTheMemberOrder) {
  for (const char* v : {"-0.5", "-1", "2000000"}) {
    SCOPED_TRACE(v);
    std::string after = WithUsage("{}");
    after.insert(after.size() - 1, std::string(R"J(,"costUSD":)J") + v);
    std::string before = WithUsage("{}", std::string(R"J("costUSD":)J") + v + ",");
    Owned a = Check(after);
    Owned b = Check(before);
    EXPECT_EQ(a.kind, LineKind::kSkipped);
    EXPECT_EQ(b.kind, a.kind);
    EXPECT_EQ(b.reason, a.reason);
  }
}

TEST_F(LineParserTest, A33_ToolUseBlocksOfContent) {
  Owned o = Check(kOpusToolUse);
  ASSERT_EQ(o.tools.size(), 1u);
  EXPECT_EQ(o.tools[0], std::make_pair(std::string("toolu_01Read"), std::string("Read")));
  // Several blocks, mixed with text and thinking; blocks without an id are not tool calls.
  std::string line = WithUsage(
      "{}", "",
      R"J("content":[{"type":"thinking","thinking":"hmm"},{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}},{"type":"text","text":"x"},{"type":"tool_use","name":"NoId","input":{}},{"type":"tool_use","id":"toolu_2","name":"Edit","input":{}},"stray",7],)J");
  o = Check(line);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  ASSERT_EQ(o.tools.size(), 2u);
  EXPECT_EQ(o.tools[0], std::make_pair(std::string("toolu_1"), std::string("Bash")));
  EXPECT_EQ(o.tools[1], std::make_pair(std::string("toolu_2"), std::string("Edit")));
  // content that is a string: no tool calls.
  o = Check(WithUsage("{}", "", R"J("content":"plain",)J"));
  EXPECT_TRUE(o.tools.empty());
}

TEST_F(LineParserTest, A3_LineSeparatorsInsideTextAreOrdinary) {
  // Raw U+2028 / U+2029 / U+0085 and '\r' inside strings, and their escapes.
  std::string line = "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_1\",\"content\":[{\"type\":\"text\",\"text\":\"a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xc2\x85" "d\\r\\u2028\"}],\"usage\":{\"input_tokens\":3}},\"timestamp\":\"2025-09-28T06:17:23.678Z\"}";
  Owned o = Check(line);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens.input, 3u);
}

TEST_F(LineParserTest, A11_NulByteInsideAStringIsInvalidJson) {
  // A raw NUL is a control character: not allowed inside a JSON string.
  std::string line = R"J({"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"a)J" +
                     std::string(1, '\0') + R"J(b"}],"usage":{"input_tokens":3}},"timestamp":"2025-09-28T06:17:23.678Z"})J";
  Owned ref = Reference(line);
  EXPECT_EQ(ref.kind, LineKind::kSkipped);
  EXPECT_EQ(ref.reason, SkipReason::kInvalidJson);
  // The fast path does not read "text" (A12's known difference), so Parse may count it; whatever
  // it does, it must be one of the two documented outcomes.
  ParsedLine out;
  bool fast = parser_.ParseFast(line, line.size(), &out);
  parser_.Parse(line, &out);
  if (fast) {
    EXPECT_EQ(out.kind, LineKind::kUsage);
  } else {
    EXPECT_EQ(out.kind, LineKind::kSkipped);
    EXPECT_EQ(out.skip_reason, SkipReason::kInvalidJson);
  }
}

}  // namespace
}  // namespace ccmon
