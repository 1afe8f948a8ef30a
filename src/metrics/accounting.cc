#include "metrics/accounting.h"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <numeric>
#include <set>

namespace ccmon {

bool ParseProjectLabelMode(std::string_view s, ProjectLabelMode* out) {
  if (s == "basename")
    *out = ProjectLabelMode::kBasename;
  else if (s == "path")
    *out = ProjectLabelMode::kPath;
  else if (s == "hash")
    *out = ProjectLabelMode::kHash;
  else if (s == "none")
    *out = ProjectLabelMode::kNone;
  else
    return false;
  return true;
}

std::string ProjectLabel(std::string_view cwd, ProjectLabelMode mode) {
  switch (mode) {
    case ProjectLabelMode::kNone:
      return "";
    case ProjectLabelMode::kPath:
      return cwd.empty() ? "unknown" : std::string(cwd);
    case ProjectLabelMode::kHash: {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_Digest(cwd.data(), cwd.size(), md, &len, EVP_sha256(), nullptr);
      static const char* hex = "0123456789abcdef";
      std::string out;
      for (int i = 0; i < 6; ++i) {  // 12 hex digits: short, collision-free at human scale
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 15]);
      }
      return out;
    }
    case ProjectLabelMode::kBasename:
      break;
  }
  while (!cwd.empty() && (cwd.back() == '/' || cwd.back() == '\\')) cwd.remove_suffix(1);
  size_t cut = cwd.find_last_of("/\\");
  std::string_view base = cut == std::string_view::npos ? cwd : cwd.substr(cut + 1);
  return base.empty() ? "unknown" : std::string(base);
}

const std::string& CappedLabeler::Other() {
  static const std::string other = "other";
  return other;
}

bool CappedLabeler::Admit(std::string value) {
  if (kept_.count(value)) return true;
  if (kept_.size() >= max_values_) return false;
  kept_.insert(std::move(value));
  return true;
}

const std::string& CappedLabeler::Label(std::string_view key) {
  auto it = by_key_.find(std::string(key));
  if (it != by_key_.end()) return *it->second;
  std::string value = value_of_ ? value_of_(key) : std::string(key);
  const std::string* label = &Other();
  if (auto kept = kept_.find(value); kept != kept_.end()) {
    label = &*kept;
  } else if (kept_.size() < max_values_) {
    label = &*kept_.insert(std::move(value)).first;  // set nodes do not move
  } else {
    ++refused_keys_;
  }
  by_key_.emplace(std::string(key), label);
  return *label;
}

PricedRequest Accounting::RequestAt(size_t i) const {
  const RequestEntry& e = ledger_->requests()[order_[i]];
  const PerString& m = by_ledger_id_[e.model];
  const PerString& c = by_ledger_id_[e.cwd];
  PricedRequest p;
  p.timestamp_ms = e.timestamp_ms;
  p.model = m.model;
  p.project = c.project;
  p.session = by_ledger_id_[e.session].label;
  p.cwd = c.label;
  p.tokens = e.tokens;
  p.web_search_requests = e.web_search_requests;
  p.sidechain = e.sidechain;
  p.cost = PriceRequest(m.price, web_search_cost_, e.tokens, e.web_search_requests, e.fast,
                        e.us_inference, e.has_cost_usd, e.cost_usd);
  return p;
}

Accounting Accounting::Build(const Ledger& ledger, const PriceTable& prices,
                             const AccountingOptions& options,
                             const std::function<void(const std::string&)>& warn) {
  Accounting a;
  const StringPool& ls = ledger.strings();
  const auto& reqs = ledger.requests();
  const TimeWindow& window = options.window;

  // The requests of the window (at their preferred copy's time, A18), in a deterministic order:
  // timestamp, then dedup key.
  std::vector<uint32_t> order;
  order.reserve(reqs.size());
  for (uint32_t i = 0; i < reqs.size(); ++i) {
    if (window.Contains(ledger.request_timestamp_ms(i))) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
    const int64_t tx = ledger.request_timestamp_ms(x), ty = ledger.request_timestamp_ms(y);
    if (tx != ty) return tx < ty;
    return ledger.request_key(x) < ledger.request_key(y);
  });

  a.ledger_ = &ledger;
  a.web_search_cost_ = prices.web_search_cost();
  a.by_ledger_id_.assign(ls.size(), PerString{});
  // Ledger string id -> label id, so each distinct string is interned once.
  auto label = [&](uint32_t ledger_id) {
    uint32_t& l = a.by_ledger_id_[ledger_id].label;
    if (l == UINT32_MAX) l = a.labels_.Intern(ls.Get(ledger_id));
    return l;
  };
  // Project labels with the cap, ranked by first use (requests and sessions share the ranking).
  ProjectLabeler projects(options.labels);
  auto project_of = [&](uint32_t cwd) {
    uint32_t& p = a.by_ledger_id_[cwd].project;
    if (p == UINT32_MAX) p = a.labels_.Intern(projects.Label(ls.Get(cwd)));
    return p;
  };
  // Model and tool labels with their caps, ranked by first request and first tool call.
  CappedLabeler models(options.labels.max_models);
  CappedLabeler tools(options.labels.max_tools);
  auto tool_of = [&](uint32_t name) {
    uint32_t& t = a.by_ledger_id_[name].tool;
    if (t == UINT32_MAX) t = a.labels_.Intern(tools.Label(ls.Get(name)));
    return t;
  };

  // Sessions of the window (counted at their earliest line, A32), in start order, take part in
  // the project ranking too.
  std::vector<std::pair<uint32_t, SessionEntry>> sessions;
  for (const auto& [sid, s] : ledger.sessions()) {
    if (window.Contains(s.first_ms)) sessions.emplace_back(sid, s);
  }
  std::sort(sessions.begin(), sessions.end(), [&](const auto& x, const auto& y) {
    if (x.second.first_ms != y.second.first_ms) return x.second.first_ms < y.second.first_ms;
    return ls.Get(x.first) < ls.Get(y.first);
  });

  std::set<std::string> warned;
  size_t si = 0;
  for (uint32_t idx : order) {
    const RequestEntry& e = reqs[idx];
    // Rank projects by first use across sessions and requests alike.
    while (si < sessions.size() && sessions[si].second.first_ms <= e.timestamp_ms) {
      project_of(sessions[si].second.cwd);
      ++si;
    }
    PerString& m = a.by_ledger_id_[e.model];
    if (m.model == UINT32_MAX) {
      const std::string& id = ls.Get(e.model);
      m.model = a.labels_.Intern(models.Label(id));
      m.price = prices.Find(id);  // by the model's own id, whatever its label
    }
    label(e.cwd);
    project_of(e.cwd);
    label(e.session);
    if (m.price == nullptr && !e.has_cost_usd && warned.insert(ls.Get(e.model)).second && warn) {
      warn(ls.Get(e.model));
    }
  }
  a.order_ = std::move(order);
  for (; si < sessions.size(); ++si) project_of(sessions[si].second.cwd);

  for (const auto& [sid, s] : sessions) {
    a.sessions_.push_back({s.first_ms, label(sid), project_of(s.cwd)});
  }

  // Tool calls of the window (at their earliest line, A33), ranked by time, then name.
  std::vector<const ToolUseEntry*> tool_uses;
  for (const ToolUseEntry& t : ledger.tool_uses().entries()) {
    if (window.Contains(t.timestamp_ms)) tool_uses.push_back(&t);
  }
  std::sort(tool_uses.begin(), tool_uses.end(), [&](const ToolUseEntry* x, const ToolUseEntry* y) {
    if (x->timestamp_ms != y->timestamp_ms) return x->timestamp_ms < y->timestamp_ms;
    return ls.Get(x->name) < ls.Get(y->name);
  });
  a.tool_calls_.reserve(tool_uses.size());
  for (const ToolUseEntry* t : tool_uses)
    a.tool_calls_.push_back({t->timestamp_ms, tool_of(t->name)});

  // API errors of the window (at their earliest line, A15).
  for (const auto& [key, ts] : ledger.api_errors()) {
    if (window.Contains(ts)) a.api_errors_.push_back(ts);
  }
  std::sort(a.api_errors_.begin(), a.api_errors_.end());

  // Prompts of the window (at their earliest copy) rank their projects after every request and
  // session (A31, A38): adding a family must not change which projects the cap keeps for the
  // others.
  std::vector<const PromptEntry*> prompts;
  for (const PromptEntry& p : ledger.prompts().entries()) {
    if (window.Contains(p.timestamp_ms)) prompts.push_back(&p);
  }
  std::sort(prompts.begin(), prompts.end(), [&](const PromptEntry* x, const PromptEntry* y) {
    if (x->timestamp_ms != y->timestamp_ms) return x->timestamp_ms < y->timestamp_ms;
    if (x->session != y->session) return ls.Get(x->session) < ls.Get(y->session);
    return ls.Get(x->cwd) < ls.Get(y->cwd);
  });
  a.prompts_.reserve(prompts.size());
  for (const PromptEntry* p : prompts) {
    a.prompts_.push_back({p->timestamp_ms, project_of(p->cwd), label(p->session)});
  }
  return a;
}

}  // namespace ccmon
