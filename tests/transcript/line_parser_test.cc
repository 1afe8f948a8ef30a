// LineParser: what is a usage record (docs/accounting.md A6-A13, and the fields A14-A19 read).
// Every line goes through Parse, ParseReference and ParseFast; the helper checks that they agree.
#include "transcript/line_parser.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "testing/test_util.h"
#include "transcript/line_parser_internal.h"

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
         R"J("usage":)J" + usage +
         R"J(},"requestId":"req_1","timestamp":"2025-09-28T06:17:23.678Z"})J";
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
  EXPECT_EQ(Check(to_user).kind, LineKind::kPrompt);  // a user line with text (A38)

  // usage fields repeated.
  Owned o = Check(WithUsage(R"J({"input_tokens":1,"output_tokens":2,"input_tokens":7})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{7, 2, 0, 0, 0}));

  // The whole usage object repeated: nothing of the first one survives.
  o = Check(WithUsage(
      R"J({"input_tokens":1,"cache_read_input_tokens":100,"speed":"fast"},"usage":{"output_tokens":9})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{0, 9, 0, 0, 0}));
  EXPECT_FALSE(o.fast);

  // message.id, requestId, timestamp, sessionId repeated.
  o = Check(
      R"J({"type":"assistant","sessionId":"s1","sessionId":"s2","requestId":"r1","message":{"id":"m1","id":"m2","model":"claude-x","usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z","requestId":"r2","timestamp":"2025-01-01T00:00:01Z"})J");
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.id, "m2");
  EXPECT_EQ(o.request_id, "r2");
  EXPECT_EQ(o.session, "s2");
  EXPECT_EQ(o.timestamp_ms, 1735689601000);

  // The whole message repeated: the second one (without usage) wins.
  o = Check(
      R"J({"type":"assistant","message":{"id":"m1","usage":{"input_tokens":1}},"message":{"id":"m2"},"timestamp":"2025-01-01T00:00:00Z"})J");
  EXPECT_EQ(o.kind, LineKind::kOther);
  // A repeated requestId that is not a string removes it.
  o = Check(
      R"J({"type":"assistant","requestId":"r1","requestId":null,"message":{"id":"m1","usage":{}},"timestamp":"2025-01-01T00:00:00Z"})J");
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
  for (
      const std::string& l :
      {kSummary, kToolUseResult, kSnapshot,
       std::string(
           R"J({"type":"system","subtype":"compact_boundary","compactMetadata":{"preTokens":120000},"timestamp":"2025-09-28T06:17:20.153Z"})J"),
       std::string("{}")}) {
    Owned o = Check(l);
    EXPECT_EQ(o.kind, LineKind::kOther) << l;
  }
  // "type" must be the string "assistant".
  EXPECT_EQ(
      Check(
          R"J({"type":"Assistant","message":{"id":"m","usage":{}},"timestamp":"2025-01-01T00:00:00Z"})J")
          .kind,
      LineKind::kOther);
  EXPECT_EQ(
      Check(R"J({"type":null,"message":{"id":"m","usage":{}},"timestamp":"2025-01-01T00:00:00Z"})J")
          .kind,
      LineKind::kOther);
}

TEST_F(LineParserTest, A6_UsageMustBeAnObjectAtMessageUsage) {
  for (const char* usage : {"null", "[]", "[{\"input_tokens\":5}]", "5", "\"x\"", "true"}) {
    Owned o = Check(WithUsage(usage));
    EXPECT_EQ(o.kind, LineKind::kOther) << usage;
  }
  // message that is not an object.
  EXPECT_EQ(
      Check(R"J({"type":"assistant","message":"hello","timestamp":"2025-01-01T00:00:00Z"})J").kind,
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
  EXPECT_EQ(
      Check(
          R"J({"type":"assistant","usage":{"input_tokens":5},"message":{"id":"m1"},"timestamp":"2025-01-01T00:00:00Z"})J")
          .kind,
      LineKind::kOther);
  EXPECT_EQ(
      Check(
          R"J({"type":"assistant","toolUseResult":{"usage":{"input_tokens":5}},"message":{"id":"m1"},"timestamp":"2025-01-01T00:00:00Z"})J")
          .kind,
      LineKind::kOther);
}

// A real-shaped agent_progress line (2.1.x): the parent's copy of a subagent's assistant line.
const std::string kAgentProgress =
    R"J({"parentUuid":"p1","isSidechain":false,"userType":"external","cwd":"/Users/USER/src/webapp","sessionId":"455218e7-0000","version":"2.1.29","gitBranch":"main","slug":"s","type":"progress","data":{"message":{"type":"assistant","message":{"model":"claude-haiku-4-5-20251001","id":"msg_01Sub","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_03","name":"Grep","input":{"pattern":"TODO"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":200,"cache_read_input_tokens":3000,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":200},"output_tokens":3,"service_tier":"standard","inference_geo":"us"}},"requestId":"req_011CSub","uuid":"u2","timestamp":"2026-04-21T00:30:20.004Z"},"normalizedMessages":[],"type":"agent_progress","prompt":"p","agentId":"a6a6af7"},"toolUseID":"agent_msg_1","parentToolUseID":"toolu_02","uuid":"u3","timestamp":"2026-04-21T00:30:20.010Z"})J";

TEST_F(LineParserTest, A7_AgentProgressCopyIsASubagentRequest) {
  Owned o = Check(kAgentProgress);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_TRUE(o.progress_copy);
  EXPECT_EQ(o.id, "msg_01Sub");
  EXPECT_TRUE(o.has_request_id);
  EXPECT_EQ(o.request_id, "req_011CSub");
  EXPECT_EQ(o.model, "claude-haiku-4-5-20251001");
  EXPECT_EQ(o.tokens, (TokenCounts{10, 3, 0, 200, 3000}));
  EXPECT_TRUE(o.us);
  // The nested record's timestamp; the outer line's session and cwd; always a sidechain request.
  EXPECT_EQ(o.timestamp_ms, 1776731420004);
  EXPECT_EQ(o.session, "455218e7-0000");
  EXPECT_EQ(o.cwd, "/Users/USER/src/webapp");
  EXPECT_TRUE(o.sidechain);
  ASSERT_EQ(o.tools.size(), 1u);
  EXPECT_EQ(o.tools[0], std::make_pair(std::string("toolu_03"), std::string("Grep")));
  if (FastSupported()) {
    EXPECT_TRUE(last_fast_decided_) << "progress lines are the common case";
  }
  // The transcripts doc's anonymised example (data.type first, no requestId).
  o = Check(kProgress);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.id, "msg_nested");
  EXPECT_FALSE(o.has_request_id);
  EXPECT_EQ(o.tokens, (TokenCounts{10, 3, 0, 0, 0}));
}

TEST_F(LineParserTest, A7_AgentProgressMemberOrderAndRepeatsFollowA6) {
  Owned want = Check(kAgentProgress);
  // "type":"progress" after data, data.type before data.message: the same record.
  std::string reordered = kAgentProgress;
  reordered.erase(reordered.find(R"J("type":"progress",)J"), 18);
  reordered.insert(reordered.size() - 1, R"J(,"type":"progress")J");
  EXPECT_EQ(Check(reordered), want);
  // A later "type" that is not progress: not a copy (and not a prompt).
  std::string retyped =
      kAgentProgress.substr(0, kAgentProgress.size() - 1) + R"J(,"type":"system"})J";
  EXPECT_EQ(Check(retyped).kind, LineKind::kOther);
  // A repeated data member replaces the first one entirely.
  std::string redata =
      kAgentProgress.substr(0, kAgentProgress.size() - 1) +
      R"J(,"data":{"type":"agent_progress","message":{"type":"user","message":{"role":"user","content":"x"}}}})J";
  EXPECT_EQ(Check(redata).kind, LineKind::kOther);
  std::string redata_null =
      kAgentProgress.substr(0, kAgentProgress.size() - 1) + R"J(,"data":null})J";
  EXPECT_EQ(Check(redata_null).kind, LineKind::kOther);
  // A repeated data.type decides.
  std::string rekind = kAgentProgress;
  rekind.insert(rekind.find(R"J("prompt":"p")J"), R"J("type":"bash_progress",)J");
  EXPECT_EQ(Check(rekind).kind, LineKind::kOther);
}

TEST_F(LineParserTest, A7_OtherProgressKindsAndNonAssistantCopiesAreNotRecords) {
  for (const char* kind :
       {"bash_progress", "mcp_progress", "hook_progress", "waiting_for_task", "Agent_progress"}) {
    std::string l = kAgentProgress;
    l.replace(l.find("\"agent_progress\""), 16, std::string("\"") + kind + "\"");
    EXPECT_EQ(Check(l).kind, LineKind::kOther) << kind;
  }
  std::string no_kind = kAgentProgress;
  no_kind.erase(no_kind.find(R"J("type":"agent_progress",)J"), 24);
  EXPECT_EQ(Check(no_kind).kind, LineKind::kOther);
  // The subagent's own user lines are copied too: they are neither requests nor prompts.
  std::string user_copy = kAgentProgress;
  const std::string nested_type = R"J({"type":"assistant","message":{)J";
  user_copy.replace(user_copy.find(nested_type), nested_type.size(),
                    R"J({"type":"user","message":{)J");
  EXPECT_EQ(Check(user_copy).kind, LineKind::kOther);
  // A nested record without usage is not a record.
  EXPECT_EQ(
      Check(
          R"J({"type":"progress","data":{"type":"agent_progress","message":{"type":"assistant","message":{"id":"m","content":[]},"timestamp":"2026-04-21T00:30:20.004Z"}},"timestamp":"2026-04-21T00:30:20.004Z"})J")
          .kind,
      LineKind::kOther);
}

TEST_F(LineParserTest, A7_UsageBelowDataOfNonProgressLinesIsNotARecord) {
  // The same data on a user line, an assistant line without its own usage, and a summary.
  size_t at = kAgentProgress.find(R"J("data":)J");
  std::string data = kAgentProgress.substr(at, kAgentProgress.find(R"J(,"toolUseID")J") - at);
  for (const char* type : {"user", "assistant", "summary", "system"}) {
    std::string l = std::string(R"J({"type":")J") + type +
                    R"J(","sessionId":"s","uuid":"u","timestamp":"2026-04-21T00:30:20.004Z",)J" +
                    data + "}";
    EXPECT_EQ(Check(l).kind, LineKind::kOther) << type;
  }
  // An assistant line with its own usage is its own record; its data is ignored.
  Msg m;
  std::string own = Line(m);
  own.insert(own.size() - 1, "," + data);
  Owned o = Check(own);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_FALSE(o.progress_copy);
  EXPECT_EQ(o.id, m.id);
}

TEST_F(LineParserTest, A7_EnvelopeOfTheCopyIsTheOuterLines) {
  // sessionId/cwd/isSidechain inside the nested record are not read; an outer isSidechain:true
  // (a progress line in a subagent's own transcript) keeps it a sidechain copy.
  std::string l = kAgentProgress;
  l.insert(l.find(R"J("requestId":"req_011CSub")J"),
           R"J("sessionId":"inner","cwd":"/inner","isSidechain":false,)J");
  Owned o = Check(l);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.session, "455218e7-0000");
  EXPECT_EQ(o.cwd, "/Users/USER/src/webapp");
  EXPECT_TRUE(o.sidechain);
  std::string side = kAgentProgress;
  side.replace(side.find(R"J("isSidechain":false)J"), 19, R"J("isSidechain":true)J");
  EXPECT_TRUE(Check(side).sidechain);
  // The outer timestamp does not matter; the nested one does.
  std::string outer_bad = kAgentProgress;
  outer_bad.replace(outer_bad.rfind("2026-04-21T00:30:20.010Z"), 24, "junk");
  EXPECT_EQ(Check(outer_bad), Check(kAgentProgress));
}

// A copy is classified like a line of its own (A9-A11): the outer line is valid JSON, so a bad
// nested record is bad_usage / missing_id / bad_timestamp, never invalid_json.
TEST_F(LineParserTest, A7_MalformedNestedRecordIsSkippedWithTheRecordsReason) {
  std::string bad_count = kAgentProgress;
  bad_count.replace(bad_count.find(R"J("output_tokens":3)J"), 17, R"J("output_tokens":-3)J");
  ExpectSkipped(bad_count, SkipReason::kBadUsage);
  std::string float_count = kAgentProgress;
  float_count.replace(float_count.find(R"J("output_tokens":3)J"), 17, R"J("output_tokens":3.5)J");
  ExpectSkipped(float_count, SkipReason::kBadUsage);
  std::string no_id = kAgentProgress;
  no_id.erase(no_id.find(R"J("id":"msg_01Sub",)J"), 17);
  ExpectSkipped(no_id, SkipReason::kMissingId);
  std::string bad_ts = kAgentProgress;
  bad_ts.replace(bad_ts.find("2026-04-21T00:30:20.004Z"), 24, "2026-04-21T00:30:20.004");
  ExpectSkipped(bad_ts, SkipReason::kBadTimestamp);
  std::string bad_cost = kAgentProgress;
  bad_cost.insert(bad_cost.find(R"J("requestId":"req_011CSub")J"), R"J("costUSD":-1,)J");
  ExpectSkipped(bad_cost, SkipReason::kBadUsage);
}

TEST_F(LineParserTest, A7_UsageInsideToolInputIsIgnored) {
  Msg m;
  m.tools = {{"toolu_01A", "Task"}};
  std::string line = Line(m);
  // Put a usage object inside the tool input.
  size_t at = line.find(R"J("input":{)J");
  ASSERT_NE(at, std::string::npos);
  line.insert(
      at + 9,
      R"J("usage":{"input_tokens":999,"output_tokens":999},"message":{"usage":{"input_tokens":5}},)J");
  Owned o = Check(line);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{4, 6, 0, 0, 0}));
  ASSERT_EQ(o.tools.size(), 1u);
  EXPECT_EQ(o.tools[0].first, "toolu_01A");
  EXPECT_EQ(o.tools[0].second, "Task");
  // The same inside a user line's tool_use input: still not a record.
  EXPECT_EQ(
      Check(
          R"J({"type":"user","message":{"role":"user","content":[{"type":"tool_use","id":"t","name":"X","input":{"usage":{"input_tokens":5}}}]},"timestamp":"2025-01-01T00:00:00Z"})J")
          .kind,
      LineKind::kOther);
}

// ---- A8: surrogates and UTF-8 -------------------------------------------------------------------

TEST_F(LineParserTest, A8_LoneSurrogateEscapeStillCounts) {
  for (const char* text :
       {R"(\ud83d)", R"(\udc00 tail)", R"(a\ud83d\ud83d b)", R"(\ud83d\ude00 pair)",
        R"(\\ud83d literal)", R"(x\uD83D)", R"(end \ud83d)"}) {
    std::string line =
        R"J({"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":")J" +
        std::string(text) +
        R"J("}],"usage":{"input_tokens":3,"output_tokens":4}},"timestamp":"2025-09-28T06:17:23.678Z"})J";
    Owned o = Check(line);
    ASSERT_EQ(o.kind, LineKind::kUsage) << text;
    EXPECT_EQ(o.tokens, (TokenCounts{3, 4, 0, 0, 0})) << text;
    EXPECT_EQ(o.id, "msg_1");
  }
  // A lone surrogate inside a value the record uses (the model name) does not drop the line.
  Owned o = Check(
      R"J({"type":"assistant","message":{"id":"msg_1","model":"claude-\ud83d","usage":{"input_tokens":3}},"timestamp":"2025-09-28T06:17:23.678Z"})J");
  EXPECT_EQ(o.kind, LineKind::kUsage);
}

TEST_F(LineParserTest, A8_RawInvalidUtf8MakesTheLineInvalid) {
  for (const std::string& bad :
       {std::string("\xff"), std::string("\xc0\xaf"), std::string("\xe2\x80"),
        std::string("\xed\xa0\x80"), std::string("\xf8\x88\x80\x80\x80"), std::string("\x80")}) {
    std::string line =
        R"J({"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"a)J" +
        bad + R"J(b"}],"usage":{"input_tokens":3}},"timestamp":"2025-09-28T06:17:23.678Z"})J";
    ExpectSkipped(line, SkipReason::kInvalidUtf8);
    EXPECT_FALSE(FastDecides(line));
  }
  // Invalid UTF-8 on a non-usage line is skipped too (the line is not valid JSON text).
  ExpectSkipped("{\"type\":\"user\",\"x\":\"\xfe\"}", SkipReason::kInvalidUtf8);
  // Valid multi-byte UTF-8 is fine, including U+2028/U+2029/U+0085 raw inside a string.
  Owned o = Check(
      "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_\xc3\xa9\",\"content\":[{\"type\":"
      "\"text\",\"text\":\"a\xe2\x80\xa8"
      "b\xe2\x80\xa9"
      "c\xc2\x85"
      "d\xf0\x9f\x98\x80\"}],\"usage\":{\"input_tokens\":3}},\"timestamp\":\"2025-09-28T06:17:23."
      "678Z\"}");
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.id, "msg_\xc3\xa9");
}

// ---- A9: token counts ---------------------------------------------------------------------------

TEST_F(LineParserTest, A9_AbsentAndNullFieldsAreZero) {
  Owned o = Check(WithUsage(
      R"J({"input_tokens":null,"output_tokens":3,"cache_creation_input_tokens":null,"cache_read_input_tokens":null,"cache_creation":null,"server_tool_use":null,"speed":null,"service_tier":null})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{0, 3, 0, 0, 0}));
  EXPECT_EQ(o.web_search, 0u);
  EXPECT_FALSE(o.fast);
  o = Check(WithUsage(
      R"J({"output_tokens":3,"cache_creation":{"ephemeral_5m_input_tokens":null,"ephemeral_1h_input_tokens":7}})J"));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens, (TokenCounts{0, 3, 0, 7, 0}));
}

TEST_F(LineParserTest, A9_IntegralFloatTokensAreAccepted) {
  Owned o = Check(WithUsage(
      R"J({"input_tokens":5.0,"output_tokens":1e2,"cache_read_input_tokens":0.0,"cache_creation_input_tokens":2.50e1})J"));
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
    for (const char* value :
         {"-1", "5.5", "\"5\"", "true", "{}", "[1]", "1e300", "-0.5", "18446744073709551616"}) {
      std::string usage = std::string(R"J({"output_tokens":1,")J") + field + "\":" + value + "}";
      SCOPED_TRACE(usage);
      ExpectSkipped(WithUsage(usage), SkipReason::kBadUsage);
    }
  }
  ExpectSkipped(WithUsage(R"J({"cache_creation":{"ephemeral_5m_input_tokens":-3}})J"),
                SkipReason::kBadUsage);
  ExpectSkipped(WithUsage(R"J({"cache_creation":{"ephemeral_1h_input_tokens":1.5}})J"),
                SkipReason::kBadUsage);
  ExpectSkipped(WithUsage(R"J({"server_tool_use":{"web_search_requests":-1}})J"),
                SkipReason::kBadUsage);
  // The negative count is reported as bad_usage even when id and timestamp are missing too.
  ExpectSkipped(R"J({"type":"assistant","message":{"usage":{"input_tokens":-1}}})J",
                SkipReason::kBadUsage);
}

// ---- A10: id and timestamp ----------------------------------------------------------------------

TEST_F(LineParserTest, A10_MissingMessageIdIsSkipped) {
  ExpectSkipped(
      R"J({"type":"assistant","message":{"model":"claude-x","usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z"})J",
      SkipReason::kMissingId);
  ExpectSkipped(
      R"J({"type":"assistant","message":{"id":null,"usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z"})J",
      SkipReason::kMissingId);
  ExpectSkipped(
      R"J({"type":"assistant","message":{"id":12345,"usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z"})J",
      SkipReason::kMissingId);
  ExpectSkipped(
      R"J({"type":"assistant","message":{"id":"","usage":{"input_tokens":1}},"timestamp":"2025-01-01T00:00:00Z"})J",
      SkipReason::kMissingId);
  // A top-level "id" is not message.id; missing id wins over a bad timestamp.
  ExpectSkipped(R"J({"type":"assistant","id":"m1","message":{"usage":{"input_tokens":1}}})J",
                SkipReason::kMissingId);
}

TEST_F(LineParserTest, A10_BadTimestampIsSkipped) {
  const std::string head =
      R"J({"type":"assistant","message":{"id":"m1","usage":{"input_tokens":1}})J";
  ExpectSkipped(head + "}", SkipReason::kBadTimestamp);
  for (const char* ts :
       {R"("2025-09-28T06:17:23.678")", R"("2025-09-28")", R"("yesterday")", "1759040243678",
        "null", R"("")", R"("2025-13-28T06:17:23Z")", R"("2025-09-28T06:17:23.678Zjunk")"}) {
    SCOPED_TRACE(ts);
    ExpectSkipped(head + R"J(,"timestamp":)J" + ts + "}", SkipReason::kBadTimestamp);
  }
  Owned o = Check(head + R"J(,"timestamp":"2025-09-28T08:17:23.678+02:00"})J");
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.timestamp_ms, 1759040243678);
}

// ---- A42: ids, model, tools and cwd at most 4 KiB
// ------------------------------------------------

// Parse alone applies A42 (ParseReference and ParseFast do not), so these lines are checked
// through Parse; at exactly kMaxIdBytes they still count, through Check (all paths agree).
TEST_F(LineParserTest, A42_ARecordWithAnIdOver4KiBIsSkipped) {
  auto replace = [](std::string line, const std::string& from, const std::string& to) {
    const size_t at = line.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return line.replace(at, from.size(), to);
  };
  struct Field {
    const std::string* line;
    std::string value;  // as it is in the line
    LineKind kind;
  };
  const std::vector<Field> fields = {
      {&kAssistant, "msg_013C6yBZTawT46T1EpQpWtGN", LineKind::kUsage},
      {&kAssistant, "req_011CTaJz5ss7W9GKaVmBxwTV", LineKind::kUsage},
      {&kAssistant, "ed8cd0a3-962b-4a71-aebd-73edfe16cdd3", LineKind::kUsage},
      {&kAssistant, "claude-sonnet-4-20250514", LineKind::kUsage},
      {&kAssistant, "/Users/USER/src/webapp", LineKind::kUsage},
      {&kOpusToolUse, "toolu_01Read", LineKind::kUsage},
      {&kOpusToolUse, "\"Read\"", LineKind::kUsage},
      {&kUser, "18b7c636-19c0-4199-8f42-ee2f5e8d22a2", LineKind::kPrompt},
      {&kUser, "ed8cd0a3-962b-4a71-aebd-73edfe16cdd3", LineKind::kPrompt},
      {&kUser, "/Users/USER/src/webapp", LineKind::kPrompt},
  };
  for (const Field& f : fields) {
    SCOPED_TRACE(f.value);
    const bool quoted = f.value.front() == '"';
    auto sized = [&](size_t n) {
      std::string v = "x" + std::string(n - 1, 'a');
      return quoted ? "\"" + v + "\"" : v;
    };
    const std::string at_limit = replace(*f.line, f.value, sized(kMaxIdBytes));
    EXPECT_EQ(Check(at_limit).kind, f.kind);
    const std::string over = replace(*f.line, f.value, sized(kMaxIdBytes + 1));
    ParsedLine out;
    parser_.Parse(over, &out);
    EXPECT_EQ(out.kind, LineKind::kSkipped);
    EXPECT_EQ(SkipReasonName(out.skip_reason), "id_too_long");
    EXPECT_EQ(Reference(over).kind, f.kind) << "the reference path alone does not apply A42";
  }
  // A line over the fast path's size (1 MiB, A13) goes the reference way, and A42 still applies.
  std::string big = replace(kAssistant, "msg_013C6yBZTawT46T1EpQpWtGN", std::string(5000, 'm'));
  big = replace(big, "Let me look at the test.", std::string(size_t(2) << 20, 't'));
  ParsedLine out;
  parser_.Parse(big, &out);
  EXPECT_EQ(SkipReasonName(out.skip_reason), "id_too_long");
  EXPECT_EQ(out.kind, LineKind::kSkipped);
}

// ---- A11: skip reasons --------------------------------------------------------------------------

TEST(SkipReasons, A11_StableReasonNames) {
  ASSERT_EQ(kSkipReasonCount, 10);
  const char* names[] = {"empty",      "invalid_json", "invalid_utf8",  "not_object",
                         "bad_usage",  "missing_id",   "bad_timestamp", "too_long",
                         "incomplete", "id_too_long"};
  for (int i = 0; i < kSkipReasonCount; ++i) EXPECT_EQ(SkipReasonName(SkipReason(i)), names[i]);
}

TEST_F(LineParserTest, A11_EmptyLines) {
  for (const std::string& l :
       {std::string(""), std::string(" "), std::string("\t \t"), std::string("\r")}) {
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
        std::string(R"J({"a":1} x)J"), std::string(R"J({"a":1}{"b":2})J"),
        std::string(R"J({"a":1,})J"), std::string(R"J({'a':1})J"), std::string(R"J({"type":NaN})J"),
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
  std::vector<std::string> corpus = {
      kSummary,     kUser,          kAssistant, kAssistantSpaced, kAssistantReordered,
      kOpusToolUse, kToolUseResult, kProgress,  kSidechain,       kSynthetic,
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
      EXPECT_TRUE(last_fast_decided_)
          << "a real-shaped line should be decided by the fast path: " << l;
    }
  }
}

TEST_F(LineParserTest, A12_FastPathNeverAssignsSkipReasons) {
  for (const std::string& l :
       {std::string("[1]"), std::string("{"), WithUsage(R"J({"input_tokens":-1})J"),
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

TEST_F(LineParserTest, A12_FastPathOffMeansReferenceOnly) {
  // CCMON_FAST_PATH=off (ctest runs this binary once more with it, as reference_only.*): the
  // fast parser is never built nor called, and every line still gets its answer.
  const char* env = std::getenv("CCMON_FAST_PATH");
  const bool off = env != nullptr && std::string(env) == "off";
  EXPECT_EQ(LineParser::FastPathEnabled(), !off && line_parser_internal::CpuHasFastPath());
  ParsedLine out;
  if (!LineParser::FastPathEnabled()) {
    EXPECT_FALSE(parser_.ParseFast(kAssistant, kAssistant.size(), &out));
  }
  parser_.Parse(kAssistant, &out);
  EXPECT_EQ(out.kind, LineKind::kUsage);
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
  std::string user = R"J({"type":"summary","summary":")J" + pad + R"J("})J";
  ParsedLine out;
  parser.Parse(user, &out);
  EXPECT_EQ(out.kind, LineKind::kOther);
  // Malformed inside, but {...}: still other (not parsed); the reference would say invalid_json.
  std::string broken = R"J({"type":"summary", broken )J" + pad + " }";
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
  std::string bad =
      WithUsage(R"J({"input_tokens":-4})J", R"J("pad":")J" + std::string(2000, 'p') + "\",");
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
  EXPECT_FALSE(MayHoldRecord(long_line));
  EXPECT_TRUE(MayHoldRecord(R"J({"usage":1})J"));
}

TEST(LineParserBigLines, A13_LongPromptIsParsedLongToolResultIsNot) {
  LineParser small(/*fast_path_max_bytes=*/1024);
  // A pasted prompt longer than the fast path's size is still a prompt (A38).
  std::string prompt =
      R"J({"type":"user","isSidechain":false,"cwd":"/w","sessionId":"s","message":{"role":"user","content":")J" +
      std::string(5000, 'p') + R"J("},"uuid":"u1","timestamp":"2025-09-28T06:17:20.153Z"})J";
  EXPECT_TRUE(MayHoldRecord(prompt));
  EXPECT_EQ(testing_util::ParseOwned(small, prompt).kind, LineKind::kPrompt);
  // A big tool result (a user line too) is only shape-checked.
  std::string result =
      R"J({"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":")J" +
      std::string(5000, 'r') + R"J(" "}]},"uuid":"u2","timestamp":"2025-09-28T06:17:20.153Z"})J";
  EXPECT_FALSE(MayHoldRecord(result));
  EXPECT_EQ(testing_util::ParseOwned(small, result).kind, LineKind::kOther);
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
  std::string tool_result =
      R"J({"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":")J" +
      std::string((1 << 20) + 100, 'r') + R"J("}]}})J";
  EXPECT_EQ(testing_util::ParseOwned(parser, tool_result).kind, LineKind::kOther);
}

// ---- Fields the ledger and pricing read (A14-A19, A25)
// -------------------------------------------

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
  Owned o = Check(WithUsage(
      R"J({"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":30,"ephemeral_1h_input_tokens":70}})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 30, 70, 0}));
  // Object first, total after: same.
  o = Check(WithUsage(
      R"J({"cache_creation":{"ephemeral_1h_input_tokens":70},"cache_creation_input_tokens":100})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 0, 70, 0}));
  // Empty object: the split is present and empty.
  o = Check(WithUsage(R"J({"cache_creation_input_tokens":100,"cache_creation":{}})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 0, 0, 0}));
  // Absent or null: all writes are 5m.
  o = Check(WithUsage(R"J({"cache_creation_input_tokens":100})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 100, 0, 0}));
  o = Check(WithUsage(R"J({"cache_creation_input_tokens":100,"cache_creation":null})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 100, 0, 0}));
  o = Check(WithUsage(
      R"J({"cache_creation":{"ephemeral_1h_input_tokens":70},"cache_creation":null,"cache_creation_input_tokens":100})J"));
  EXPECT_EQ(o.tokens, (TokenCounts{0, 0, 100, 0, 0}));
  // The real opus line: 1h writes.
  o = Check(kOpusToolUse);
  EXPECT_EQ(o.tokens, (TokenCounts{6, 136, 0, 8837, 16410}));
}

TEST_F(LineParserTest, A25_CostUsdIsParsedAsExactDecimal) {
  struct Case {
    const char* token;
    Pico pico;
  } cases[] = {{"0.123456789", 123456789000},
               {"0.0123", 12300000000},
               {"1e-3", 1000000000},
               {"1.5E+1", 15000000000000},
               {"0", 0},
               {"2", 2000000000000},
               {"0.000000000001", 1},
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
  std::string line =
      "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_1\",\"content\":[{\"type\":\"text\","
      "\"text\":\"a\xe2\x80\xa8"
      "b\xe2\x80\xa9"
      "c\xc2\x85"
      "d\\r\\u2028\"}],\"usage\":{\"input_tokens\":3}},\"timestamp\":\"2025-09-28T06:17:23.678Z\"}";
  Owned o = Check(line);
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_EQ(o.tokens.input, 3u);
}

TEST_F(LineParserTest, A11_NulByteInsideAStringIsInvalidJson) {
  // A raw NUL is a control character: not allowed inside a JSON string.
  std::string line =
      R"J({"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"a)J" +
      std::string(1, '\0') +
      R"J(b"}],"usage":{"input_tokens":3}},"timestamp":"2025-09-28T06:17:23.678Z"})J";
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

// ---- Parser strictness (A6, A9, A10, A11) -------------------------------------------------------

TEST_F(LineParserTest, A6_ByteOrderMarkOnlyAtTheStartOfAFile) {
  const std::string bom = "\xEF\xBB\xBF";
  ParsedLine out;
  // A file's first line may start with a BOM: it is ignored.
  parser_.Parse(bom + kAssistant, &out, /*first_in_file=*/true);
  EXPECT_EQ(Own(out), Check(kAssistant));
  parser_.Parse(bom, &out, /*first_in_file=*/true);
  EXPECT_EQ(out.kind, LineKind::kSkipped);
  EXPECT_EQ(out.skip_reason, SkipReason::kEmpty);
  // Anywhere else it is not JSON text, in every path (nlohmann_json and simdjson skip one).
  for (const std::string& l : {bom + kAssistant, bom + kUser, bom + "{}"}) {
    ExpectSkipped(l, SkipReason::kInvalidJson);
    EXPECT_FALSE(FastDecides(l));
  }
  // Only one, and only at the very start.
  parser_.Parse(bom + bom + kAssistant, &out, true);
  EXPECT_EQ(out.skip_reason, SkipReason::kInvalidJson);
  parser_.Parse(" " + bom + kAssistant, &out, true);
  EXPECT_EQ(out.skip_reason, SkipReason::kInvalidJson);
  // The long-line route (no "usage": shape check only) applies the same rule.
  LineParser small(/*fast_path_max_bytes=*/16);
  small.Parse(bom + kSummary, &out, false);
  EXPECT_EQ(out.kind, LineKind::kSkipped);
  EXPECT_EQ(out.skip_reason, SkipReason::kInvalidJson);
  small.Parse(bom + kSummary, &out, true);
  EXPECT_EQ(out.kind, LineKind::kOther);
}

TEST_F(LineParserTest, A11_NulByteAfterTheValueIsInvalidJson) {
  // nlohmann_json stops at a NUL as if the input ended there: {valid}\0garbage used to count.
  for (const std::string& tail :
       {std::string(1, '\0'), std::string("\0garbage", 8), std::string("\0\0\0", 3)}) {
    std::string line = kAssistant + tail;
    SCOPED_TRACE(testing_util::Printable(line.substr(line.size() - 12)));
    ExpectSkipped(line, SkipReason::kInvalidJson);
    EXPECT_FALSE(FastDecides(line));
  }
  ExpectSkipped(std::string("{\"a\":1,\0\"b\":2}", 14), SkipReason::kInvalidJson);
  ExpectSkipped(std::string("\0", 1) + kAssistant, SkipReason::kInvalidJson);
}

TEST_F(LineParserTest, A9_OutOfRangeNumberIsInvalidJson) {
  // 1e400 is beyond a double: not a number JSON parsers agree on, wherever it is.
  for (const char* v : {"1e400", "-1e400", "1E+400", "123456789e999999999999"}) {
    SCOPED_TRACE(v);
    ExpectSkipped(WithUsage(std::string(R"J({"input_tokens":)J") + v + "}"),
                  SkipReason::kInvalidJson);
    ExpectSkipped(WithUsage("{}", std::string(R"J("costUSD":)J") + v + ","),
                  SkipReason::kInvalidJson);
    // In a member the fast path does not read, A12's known difference applies.
    Owned ref = Reference(WithUsage("{}", std::string(R"J("other":)J") + v + ","));
    EXPECT_EQ(ref.kind, LineKind::kSkipped);
    EXPECT_EQ(ref.reason, SkipReason::kInvalidJson);
  }
}

TEST_F(LineParserTest, A9_OnlyExactIntegersAreCounts) {
  // A double would round these to integers; their decimal value is not one.
  for (const char* v : {"1e-400", "1.0000000000000000001", "4294967295.00000000001",
                        "0.99999999999999999999", "5e-1", "-1e-400", "1.5"}) {
    SCOPED_TRACE(v);
    ExpectSkipped(WithUsage(std::string(R"J({"input_tokens":)J") + v + "}"), SkipReason::kBadUsage);
  }
  // These are integers, however they are written.
  struct Case {
    const char* literal;
    uint64_t value;
  } ok[] = {{"0e-400", 0},
            {"0.000", 0},
            {"-0", 0},
            {"-0.0", 0},
            {"50e-1", 5},
            {"1.5e1", 15},
            {"2.50e1", 25},
            {"100E-2", 1},
            {"1e9", 1000000000},
            {"4294967295.0", 4294967295},
            {"42949672950e-1", 4294967295},
            {"0.0000000000000000000000000000000000001e37", 1}};
  for (const Case& c : ok) {
    SCOPED_TRACE(c.literal);
    Owned o = Check(WithUsage(std::string(R"J({"input_tokens":)J") + c.literal + "}"));
    ASSERT_EQ(o.kind, LineKind::kUsage);
    EXPECT_EQ(o.tokens.input, c.value);
  }
  ExpectSkipped(WithUsage(R"J({"input_tokens":4294967296e0})J"), SkipReason::kBadUsage);
  ExpectSkipped(WithUsage(R"J({"input_tokens":1e10})J"), SkipReason::kBadUsage);
}

TEST_F(LineParserTest, A10_TimestampOffsetsMustBeValidTimeOffsets) {
  const std::string head =
      R"J({"type":"assistant","message":{"id":"m1","usage":{"input_tokens":1}},"timestamp":")J";
  for (const char* ts :
       {"2025-09-28T06:17:23.678+99:99", "2025-09-28T06:17:23.678+24:00",
        "2025-09-28T06:17:23.678-24:00", "2025-09-28T06:17:23.678+23:60",
        "2025-09-28T06:17:23.678+2400", "2025-09-28T06:17:23+05:7", "2025-09-28T06:17:23+05:"}) {
    SCOPED_TRACE(ts);
    ExpectSkipped(head + ts + "\"}", SkipReason::kBadTimestamp);
  }
  struct Case {
    const char* ts;
    int64_t ms;
  } ok[] = {{"2025-09-28T06:17:23.678+23:59", 1759040243678 - (23 * 60 + 59) * 60000},
            {"2025-09-28T06:17:23.678-23:59", 1759040243678 + (23 * 60 + 59) * 60000},
            {"2025-09-28T06:17:23.678-00:00", 1759040243678},
            {"2025-09-28T11:47:23.678+0530", 1759040243678}};
  for (const Case& c : ok) {
    SCOPED_TRACE(c.ts);
    Owned o = Check(head + c.ts + "\"}");
    ASSERT_EQ(o.kind, LineKind::kUsage);
    EXPECT_EQ(o.timestamp_ms, c.ms);
  }
}

// ---- A38: prompts a person typed
// ------------------------------------------------------------------

std::string UserLine(const std::string& content, const std::string& extra = "",
                     const std::string& uuid = "18b7c636-19c0-4199-8f42-ee2f5e8d22a2") {
  return R"J({"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/Users/USER/src/webapp","sessionId":"ed8cd0a3-962b-4a71-aebd-73edfe16cdd3","version":"2.1.29","gitBranch":"main",)J" +
         extra + R"J("type":"user","message":{"role":"user","content":)J" + content +
         R"J(},"uuid":")J" + uuid + R"J(","timestamp":"2025-09-28T06:17:20.153Z"})J";
}

TEST_F(LineParserTest, A38_TypedTextIsAPrompt) {
  Owned o = Check(kUser);
  ASSERT_EQ(o.kind, LineKind::kPrompt);
  EXPECT_EQ(o.uuid, "18b7c636-19c0-4199-8f42-ee2f5e8d22a2");
  EXPECT_EQ(o.timestamp_ms, 1759040240153);
  EXPECT_EQ(o.cwd, "/Users/USER/src/webapp");
  EXPECT_EQ(o.session, "ed8cd0a3-962b-4a71-aebd-73edfe16cdd3");
  if (FastSupported()) {
    EXPECT_TRUE(last_fast_decided_);
  }
  // Array content with a text block (an image pasted with text), in any order.
  for (
      const char* content :
      {R"J([{"type":"text","text":"what is wrong here?"},{"type":"image","source":{"type":"base64","data":"AAAA"}}])J",
       R"J([{"type":"image","source":{}},{"type":"text","text":"this"}])J",
       R"J("<commandline> is not a command tag")J",
       R"J("  <command-name> after spaces is typed text")J",
       R"J("\n[Request interrupted by user] pasted after a newline")J", R"J("x")J"}) {
    SCOPED_TRACE(content);
    EXPECT_EQ(Check(UserLine(content)).kind, LineKind::kPrompt);
  }
}

TEST_F(LineParserTest, A38_ToolResultsMetaSummariesAndSubagentsAreNotPrompts) {
  EXPECT_EQ(Check(kToolUseResult).kind, LineKind::kOther);
  // A text block next to a tool result (text typed while a tool ran is sent with it) is not one.
  EXPECT_EQ(
      Check(
          UserLine(
              R"J([{"type":"text","text":"hi"},{"type":"tool_result","tool_use_id":"t","content":"ok"}])J"))
          .kind,
      LineKind::kOther);
  EXPECT_EQ(Check(UserLine(R"J("expanded slash command")J", R"J("isMeta":true,)J")).kind,
            LineKind::kOther);
  EXPECT_EQ(Check(UserLine(R"J("This session is being continued from a previous conversation")J",
                           R"J("isCompactSummary":true,"isVisibleInTranscriptOnly":true,)J"))
                .kind,
            LineKind::kOther);
  // A subagent's prompt comes from the Task tool, not a person.
  std::string side = kUser;
  side.replace(side.find(R"J("isSidechain":false)J"), 19, R"J("isSidechain":true)J");
  EXPECT_EQ(Check(side).kind, LineKind::kOther);
  // Flags only count when they are true.
  EXPECT_EQ(Check(UserLine(R"J("typed")J", R"J("isMeta":false,"isCompactSummary":null,)J")).kind,
            LineKind::kPrompt);
  EXPECT_EQ(Check(UserLine(R"J("typed")J", R"J("isMeta":"true",)J")).kind, LineKind::kPrompt);
}

TEST_F(LineParserTest, A38_CommandPlumbingIsNotAPrompt) {
  for (
      const char* content :
      {R"J("<command-message>init is analyzing your codebase…</command-message>\n<command-name>/init</command-name>")J",
       R"J("<command-name>/model</command-name>\n<command-message>model</command-message>\n<command-args>opus</command-args>")J",
       R"J("<command-args></command-args>")J",
       R"J("<local-command-stdout>Set model to opus</local-command-stdout>")J",
       R"J("<local-command-stderr>Error</local-command-stderr>")J",
       R"J("<local-command-caveat>Caveat: The messages below were generated by the user while running local commands.</local-command-caveat>")J",
       R"J("<bash-input>git status</bash-input>")J",
       R"J("<bash-stdout>clean</bash-stdout><bash-stderr></bash-stderr>")J",
       R"J("<bash-stderr>not found</bash-stderr>")J",
       R"J("<task-notification>\n<task-id>b1</task-id>\n<status>completed</status>\n</task-notification>")J",
       R"J("[Request interrupted by user]")J", R"J("[Request interrupted by user for tool use]")J",
       R"J([{"type":"text","text":"[Request interrupted by user for tool use]"}])J",
       R"J([{"type":"text","text":"<bash-input>ls</bash-input>"},{"type":"text","text":"typed"}])J"}) {
    SCOPED_TRACE(content);
    EXPECT_EQ(Check(UserLine(content)).kind, LineKind::kOther);
  }
}

TEST_F(LineParserTest, A38_EmptyOrMissingTextOrUuidIsNotAPrompt) {
  for (const char* content :
       {R"J("")J", "[]", R"J([{"type":"image","source":{}}])J",
        R"J([{"type":"text","text":""},{"type":"text","text":"second"}])J",
        R"J([{"type":"text","text":null}])J", R"J([{"type":"text"}])J", "null", "42", "{}"}) {
    SCOPED_TRACE(content);
    EXPECT_EQ(Check(UserLine(content)).kind, LineKind::kOther);
  }
  // Without a uuid the line cannot be deduplicated against resume copies: not counted.
  std::string no_uuid = kUser;
  const std::string uuid_member = R"J(,"uuid":"18b7c636-19c0-4199-8f42-ee2f5e8d22a2")J";
  no_uuid.erase(no_uuid.find(uuid_member), uuid_member.size());
  EXPECT_EQ(Check(no_uuid).kind, LineKind::kOther);
  EXPECT_EQ(Check(UserLine(R"J("typed")J", "", "")).kind, LineKind::kOther);
  std::string uuid_num = kUser;
  uuid_num.replace(uuid_num.find(R"J("18b7c636-19c0-4199-8f42-ee2f5e8d22a2")J"), 38, "7");
  EXPECT_EQ(Check(uuid_num).kind, LineKind::kOther);
  // Without a valid timestamp it cannot be placed in time (the line is not skipped either).
  std::string no_ts = kUser;
  no_ts.replace(no_ts.find("2025-09-28T06:17:20.153Z"), 24, "yesterday");
  EXPECT_EQ(Check(no_ts).kind, LineKind::kOther);
}

TEST_F(LineParserTest, A38_EscapesAndRepeatsDecideLikeJson) {
  // Escapes in the first bytes are decoded before the plumbing test, in both paths.
  EXPECT_EQ(Check(UserLine(R"J("\u003cbash-input>ls</bash-input>")J")).kind, LineKind::kOther);
  EXPECT_EQ(Check(UserLine(R"J("\"<bash-input>\" is a tag")J")).kind, LineKind::kPrompt);
  EXPECT_EQ(Check(UserLine(R"J("tab\there, \ud83d lone surrogate")J")).kind, LineKind::kPrompt);
  EXPECT_EQ(Check(UserLine(R"J("\ud83d")J")).kind, LineKind::kPrompt);
  EXPECT_EQ(Check(UserLine(R"J("<bash\u002dinput>ls</bash-input>")J")).kind, LineKind::kOther);
  // The fast path decides an escape it does not decode when the text before it cannot be plumbing.
  EXPECT_EQ(Check(UserLine(R"J("caf\u00e9 au lait")J")).kind, LineKind::kPrompt);
  if (FastSupported()) {
    EXPECT_TRUE(last_fast_decided_);
  }
  Owned o = Check(UserLine(R"J("typed")J", "", R"J(a\"b)J"));
  ASSERT_EQ(o.kind, LineKind::kPrompt);
  EXPECT_EQ(o.uuid, "a\"b");
  // The last content / uuid / type member decides.
  EXPECT_EQ(Check(UserLine(R"J("<bash-input>x</bash-input>","content":"typed")J")).kind,
            LineKind::kPrompt);
  EXPECT_EQ(Check(UserLine(R"J("typed","content":[{"type":"tool_result","content":"x"}])J")).kind,
            LineKind::kOther);
  EXPECT_EQ(Check(kUser.substr(0, kUser.size() - 1) + R"J(,"type":"assistant"})J").kind,
            LineKind::kOther);
  EXPECT_EQ(Check(kUser.substr(0, kUser.size() - 1) + R"J(,"uuid":"u2"})J").uuid, "u2");
  // A long prompt: only its start is looked at.
  std::string long_text = "\"" + std::string(5000, 'a') + "\"";
  EXPECT_EQ(Check(UserLine(long_text)).kind, LineKind::kPrompt);
}

// ---- A39: US-only inference ---------------------------------------------------------------------

TEST_F(LineParserTest, A39_InferenceGeoUsIsRead) {
  Msg m;
  m.inference_geo = "us";
  Owned o = Check(Line(m));
  ASSERT_EQ(o.kind, LineKind::kUsage);
  EXPECT_TRUE(o.us);
  for (const char* geo : {"global", "not_available", "US", "eu"}) {
    m.inference_geo = geo;
    EXPECT_FALSE(Check(Line(m)).us) << geo;
  }
  EXPECT_FALSE(Check(WithUsage(R"J({"inference_geo":null})J")).us);
  EXPECT_FALSE(Check(WithUsage(R"J({"inference_geo":""})J")).us);
  EXPECT_FALSE(Check(WithUsage(R"J({"inference_geo":["us"]})J")).us);
  EXPECT_FALSE(Check(WithUsage(R"J({"inference_geo":"us","inference_geo":"global"})J")).us);
  // Outside usage it is not read.
  EXPECT_FALSE(Check(WithUsage("{}", R"J("inference_geo":"us",)J")).us);
  // The usage object repeated: nothing of the first one survives.
  EXPECT_FALSE(Check(WithUsage(R"J({"inference_geo":"us"},"usage":{"input_tokens":1})J")).us);
}

}  // namespace
}  // namespace ccmon
