#!/usr/bin/env python3
"""Writes ccmon's Grafana dashboards (dashboards/*.json) from the panel lists below.

    dashboards/generate.py            rewrite the JSON files next to this script
    dashboards/generate.py --check    exit 1 when a JSON file differs from what this writes

The JSON files are what users import; this script is how they are kept consistent (one
datasource reference, one set of variables, units and the "Needs:" notes on every panel).
Edit the panels here, run it, commit both. Python 3 standard library only.

Every panel's description ends with a "Needs:" note that dashboards/README.md explains and the
tests read (tests/dashboards/): "any setup" (agents pushing straight into Prometheus, a
gateway, or a replay backfill), "live agents" (series only a running ccmon-agent sends),
"agent /metrics scraped", "ccmon-gateway /metrics scraped" and "ccmon rules".
"""

import json
import os
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39

# What a panel needs to show data (the tests check each panel in every setup that has it).
ANY = "any setup"
LIVE = "live agents"
AGENT_SCRAPE = "agent /metrics scraped"
GATEWAY = "ccmon-gateway /metrics scraped"
RULES = "ccmon rules"

# Label selectors with the dashboard variables (all multi-value with All = ".*").
DMP = 'device=~"$device", model=~"$model", project=~"$project"'
DM = 'device=~"$device", model=~"$model"'
DP = 'device=~"$device", project=~"$project"'
D = 'device=~"$device"'
INPUT_SIDE = 'type=~"input|cache_creation_5m|cache_creation_1h|cache_read"'


def target(expr, legend="", ref="A", instant=False, fmt=None):
    t = {"datasource": DS, "refId": ref, "expr": expr, "range": not instant, "instant": instant}
    if legend:
        t["legendFormat"] = legend
    if fmt:
        t["format"] = fmt
    return t


class Panel:
    def __init__(self, kind, title, desc, needs, targets, unit, w=6, h=6, interval=None,
                 options=None, custom=None, extra_field=None, transformations=None,
                 overrides=None):
        self.kind, self.title, self.desc, self.needs = kind, title, desc, needs
        self.targets, self.unit, self.w, self.h = targets, unit, w, h
        self.interval, self.options, self.custom = interval, options, custom
        self.extra_field, self.transformations = extra_field or {}, transformations
        self.overrides = overrides or []

    def json(self, pid, x, y):
        needs = ", ".join(self.needs)
        defaults = {"unit": self.unit}
        defaults.update(self.extra_field)
        if self.custom is not None:
            defaults["custom"] = self.custom
        p = {
            "id": pid,
            "type": self.kind,
            "title": self.title,
            "description": "%s Needs: %s." % (self.desc, needs),
            "datasource": DS,
            "gridPos": {"h": self.h, "w": self.w, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options or {},
            "targets": [dict(t, refId=t.get("refId") or chr(65 + i))
                        for i, t in enumerate(self.targets)],
        }
        if self.interval:
            p["interval"] = self.interval
        if self.transformations:
            p["transformations"] = self.transformations
        return p


def stat(title, desc, needs, expr, unit, w=4, decimals=None, graph=False):
    extra = {"decimals": decimals} if decimals is not None else {}
    return Panel("stat", title, desc, needs, [target(expr, instant=True)], unit, w=w, h=4,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                            "values": False},
                          "graphMode": "area" if graph else "none", "colorMode": "value",
                          "textMode": "auto"},
                 extra_field=extra)


def series(title, desc, needs, targets, unit, w=12, h=8, interval=None, bars=False, stack=False,
           legend_calcs=("sum",), overrides=None):
    custom = {"drawStyle": "bars" if bars else "line", "fillOpacity": 60 if bars else 10,
              "lineWidth": 1, "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    return Panel("timeseries", title, desc, needs, targets, unit, w=w, h=h, interval=interval,
                 custom=custom, overrides=overrides,
                 options={"legend": {"displayMode": "table", "placement": "right",
                                     "showLegend": True, "calcs": list(legend_calcs)},
                          "tooltip": {"mode": "multi", "sort": "desc"}})


def bars(title, desc, needs, expr, legend, unit, w=8, h=8):
    return Panel("bargauge", title, desc, needs, [target(expr, legend, instant=True)], unit, w=w,
                 h=h, options={"orientation": "horizontal", "displayMode": "basic",
                               "showUnfilled": True,
                               "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                                 "values": False}})


def increase(metric, sel, window="$__range"):
    return "increase(%s{%s}[%s])" % (metric, sel, window)


# Devices online: the gateway's claude_device_online when it is scraped, else the devices with a
# sample in Prometheus's 5-minute lookback (agents re-send every series every 15 s).
DEVICES_ONLINE = ('sum(max by (device) (claude_device_online{%s})) '
                  'or count(count by (device) (claude_cost_usd_total{%s})) or vector(0)' % (D, D))


def hit_ratio(by, sel, window):
    grp = "sum by (%s) " % by if by else "sum"
    return ('%s(increase(claude_tokens_total{%s, type="cache_read"}[%s])) / %s(increase('
            'claude_tokens_total{%s, %s}[%s]))' % (grp, sel, window, grp, sel, INPUT_SIDE, window))


def overview():
    return [
        [stat("Cost", "USD at list prices over the dashboard's time range.", [ANY],
              "sum(%s)" % increase("claude_cost_usd_total", DMP), "currencyUSD", decimals=2),
         stat("Tokens", "Tokens of every type over the time range.", [ANY],
              "sum(%s)" % increase("claude_tokens_total", DMP), "short"),
         stat("Requests", "Deduplicated API requests over the time range.", [ANY],
              "sum(%s)" % increase("claude_requests_total", DMP), "short"),
         stat("Cache savings", "What cache reads saved compared with uncached input, over the "
              "time range.", [ANY], "sum(%s)" % increase("claude_cache_savings_usd_total", DM),
              "currencyUSD", decimals=2),
         stat("Cache hit ratio", "Cache-read tokens / all input-side tokens (input, cache "
              "writes, cache reads) over the time range.", [ANY],
              hit_ratio("", DMP, "$__range"), "percentunit", decimals=1),
         stat("Active sessions", "Sessions with a request in the last 5 "
              "minutes (ccmon-agent's claude_active_sessions), now.", [LIVE],
              "sum(claude_active_sessions{%s}) or vector(0)" % D, "short", w=2),
         stat("Devices online", "The gateway's claude_device_online when it is scraped, else "
              "devices with a sample in the last 5 minutes (agents re-send every 15 s).", [ANY],
              DEVICES_ONLINE, "short", w=2)],
        [series("Cost over time by model", "USD per interval (an hour, or longer on long "
                "time ranges; the legend sums the range), stacked by model.", [ANY],
                [target("sum by (model) (%s)" % increase("claude_cost_usd_total", DMP,
                                                          "$__interval"), "{{model}}")],
                "currencyUSD", interval="1h", bars=True, stack=True),
         series("Tokens over time by type", "Tokens per interval (an hour or longer) by type "
                "(input, output, 5-minute and 1-hour cache writes, cache reads).", [ANY],
                [target("sum by (type) (%s)" % increase("claude_tokens_total", DMP,
                                                         "$__interval"), "{{type}}")],
                "short", interval="1h", bars=True, stack=True)],
        [bars("Cost by model", "USD over the time range.", [ANY],
              "sort_desc(sum by (model) (%s))" % increase("claude_cost_usd_total", DMP),
              "{{model}}", "currencyUSD"),
         bars("Cost by device", "USD over the time range.", [ANY],
              "sort_desc(sum by (device) (%s))" % increase("claude_cost_usd_total", DMP),
              "{{device}}", "currencyUSD"),
         bars("Cost by project (top 15)", "USD over the time range; projects beyond the "
              "agent's --max-projects are counted under 'other'.", [ANY],
              "sort_desc(topk(15, sum by (project) (%s)))" % increase("claude_cost_usd_total",
                                                                      DMP),
              "{{project}}", "currencyUSD")],
        [bars("Tokens by type", "Tokens over the time range.", [ANY],
              "sort_desc(sum by (type) (%s))" % increase("claude_tokens_total", DMP), "{{type}}",
              "short"),
         series("Cache savings and hit ratio", "USD saved by cache reads per hour (bars, left) "
                "and the hour's cache hit ratio (line, right).", [ANY],
                [target("sum(%s)" % increase("claude_cache_savings_usd_total", DM, "$__interval"),
                        "savings"),
                 target(hit_ratio("", DMP, "$__interval"), "hit ratio", ref="B")],
                "currencyUSD", w=8, interval="1h", bars=True, legend_calcs=(),
                overrides=[{"matcher": {"id": "byName", "options": "hit ratio"},
                            "properties": [{"id": "unit", "value": "percentunit"},
                                           {"id": "custom.drawStyle", "value": "line"},
                                           {"id": "custom.axisPlacement", "value": "right"}]}]),
         series("Requests over time by model", "Deduplicated API requests per interval (an "
                "hour or longer).", [ANY],
                [target("sum by (model) (%s)" % increase("claude_requests_total", DMP,
                                                          "$__interval"), "{{model}}")],
                "short", w=8, interval="1h", bars=True, stack=True)],
    ]


def trends():
    weekday_hour = ("sum by (weekday, hour) (sum_over_time(weekday_hour:claude_requests:"
                    "increase1m{%s}[$__range]))" % D)
    return [
        [series("Daily cost by model", "USD per UTC day (increase over each day).", [ANY],
                [target("sum by (model) (%s)" % increase("claude_cost_usd_total", DMP, "1d"),
                        "{{model}}")], "currencyUSD", interval="1d", bars=True, stack=True),
         series("Daily tokens by model", "Tokens of every type per UTC day.", [ANY],
                [target("sum by (model) (%s)" % increase("claude_tokens_total", DMP, "1d"),
                        "{{model}}")], "short", interval="1d", bars=True, stack=True)],
        [Panel("table", "Requests by weekday and hour of day (UTC)",
               "Requests in each hour of each weekday over the time range (rows: weekday, "
               "columns: hour, UTC), from the weekday_hour:claude_requests:increase1m recording "
               "rule; for a backfilled history create its samples with `promtool tsdb "
               "create-blocks-from rules`.", [RULES],
               [target(weekday_hour, instant=True, fmt="table")], "short", w=24, h=9,
               transformations=[{"id": "groupingToMatrix",
                                 "options": {"rowField": "weekday", "columnField": "hour",
                                             "valueField": "Value", "emptyValue": "zero"}}],
               custom={"align": "center", "cellOptions": {"type": "color-background"}},
               extra_field={"decimals": 0,
                            "color": {"mode": "continuous-GrYlRd"}},
               options={"showHeader": True, "cellHeight": "sm",
                        "sortBy": [{"displayName": "weekday\\hour", "desc": False}]})],
        [series("Sessions and prompts per day", "Sessions (counted at their first request) and "
                "prompts typed by a person, per UTC day.", [ANY],
                [target("sum(%s)" % increase("claude_sessions_total", DP, "1d"), "sessions"),
                 target("sum(%s)" % increase("claude_user_prompts_total", DP, "1d"), "prompts",
                        ref="B")], "short", w=12, interval="1d", bars=True),
         series("Tool calls per day by tool", "tool_use blocks per UTC day, the 10 most used "
                "tools of each day.", [ANY],
                [target("topk(10, sum by (tool) (%s))" % increase("claude_tool_calls_total", D,
                                                                 "1d"), "{{tool}}")], "short",
                w=12, interval="1d", bars=True, stack=True)],
        [bars("Tool calls by tool", "tool_use blocks over the time range (top 20).", [ANY],
              "sort_desc(topk(20, sum by (tool) (%s)))" % increase("claude_tool_calls_total", D),
              "{{tool}}", "short"),
         series("API errors per day", "API error messages in the transcripts per UTC day.",
                [ANY], [target("sum by (device) (%s)" % increase("claude_api_errors_total", D,
                                                                  "1d"), "{{device}}")],
                "short", w=8, interval="1d", bars=True, stack=True),
         series("Web searches per day", "Server-side web searches per UTC day.", [ANY],
                [target("sum by (model) (%s)" % increase("claude_web_search_requests_total", DM,
                                                          "1d"), "{{model}}")],
                "short", w=8, interval="1d", bars=True, stack=True)],
    ]


def per_request():
    cpr = "claude_cost_per_request_usd"
    return [
        [stat("Mean cost per request", "USD per priced request over the time range.", [ANY],
              "sum(%s) / sum(%s)" % (increase(cpr + "_sum", DM), increase(cpr + "_count", DM)),
              "currencyUSD", w=6, decimals=3),
         stat("Input/output ratio", "Input-side tokens (input, cache writes, cache reads) per "
              "output token over the time range.", [ANY],
              "sum(%s) / sum(%s)" % (increase("claude_tokens_total", DMP + ", " + INPUT_SIDE),
                                     increase("claude_tokens_total", DMP + ', type="output"')),
              "short", w=6, decimals=1),
         stat("Unpriced tokens", "Tokens of requests whose model has no price (counted as $0): "
              "update the price table (ccmon-pricing update) when this is not 0.", [ANY],
              "sum(%s) or vector(0)" % increase("claude_unpriced_tokens_total", DM), "short",
              w=6),
         stat("Requests per minute", "Requests per minute over the last 5 minutes of the time "
              "range.", [ANY], "sum(%s) / 5" % increase("claude_requests_total", DMP, "5m"),
              "short", w=6, decimals=2)],
        [Panel("heatmap", "Cost per request distribution", "Priced requests per cost bucket "
               "per hour (claude_cost_per_request_usd).", [ANY],
               [target("sum by (le) (%s)" % increase(cpr + "_bucket", DM, "$__interval"),
                       "{{le}}", fmt="heatmap")], "short", w=12, h=9, interval="1h",
               options={"calculate": False, "yAxis": {"unit": "currencyUSD"},
                        "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges"},
                        "rowsFrame": {"layout": "le"}, "tooltip": {"show": True}}),
         series("Cost per request percentiles", "Median, 90th and 99th percentile of the cost "
                "of a priced request, per hour (interpolated within the histogram's buckets).",
                [ANY], [target("histogram_quantile(%s, sum by (le) (%s))"
                               % (q, increase(cpr + "_bucket", DM, "$__interval")), "p%s" % p,
                               ref=chr(65 + i))
                        for i, (q, p) in enumerate([("0.5", "50"), ("0.9", "90"),
                                                    ("0.99", "99")])],
                "currencyUSD", w=12, h=9, interval="1h", legend_calcs=("mean", "max"))],
        [series("Requests per minute by model", "Requests per minute, averaged over 5 minutes.",
                [ANY], [target("sum by (model) (%s) / 5" % increase("claude_requests_total", DMP,
                                                                     "5m"), "{{model}}")],
                "short", w=12, interval="1m", legend_calcs=("mean", "max")),
         series("Input/output ratio by model", "Input-side tokens per output token, per hour.",
                [ANY], [target("sum by (model) (%s) / sum by (model) (%s)"
                               % (increase("claude_tokens_total", DMP + ", " + INPUT_SIDE,
                                           "$__interval"),
                                  increase("claude_tokens_total", DMP + ', type="output"',
                                           "$__interval")), "{{model}}")],
                "short", w=12, interval="1h", legend_calcs=("mean",))],
        [series("Mean cost per request by model", "USD per priced request, per hour.", [ANY],
                [target("sum by (model) (%s) / sum by (model) (%s)"
                        % (increase(cpr + "_sum", DM, "$__interval"),
                           increase(cpr + "_count", DM, "$__interval")), "{{model}}")],
                "currencyUSD", w=12, interval="1h", legend_calcs=("mean",)),
         bars("Unpriced tokens by model", "Tokens counted at $0 because the model has no price, "
              "over the time range.", [ANY],
              "sort_desc(sum by (device, model) (%s))" % increase("claude_unpriced_tokens_total",
                                                                   DM),
              "{{device}} {{model}}", "short", w=12)],
    ]


def fleet():
    rate = "$__rate_interval"
    devices_table = Panel(
        "table", "Devices", "Per device: online (1/0), last seen and agent version as the "
        "gateway reports them; without a gateway, the devices with a sample in the last 5 "
        "minutes and their newest sample's time.", [GATEWAY],
        [target("max by (device) (claude_device_online{%s}) or (count by (device) "
                "(claude_cost_usd_total{%s}) > bool 0)" % (D, D), instant=True, fmt="table"),
         target("1000 * (max by (device) (claude_device_last_seen_timestamp_seconds{%s}) or max "
                "by (device) (timestamp(claude_cost_usd_total{%s})))" % (D, D), ref="B",
                instant=True, fmt="table"),
         target("max by (device, agent) (claude_device_agent_info{%s})" % D, ref="C",
                instant=True, fmt="table")],
        "short", w=12, h=8,
        transformations=[{"id": "merge", "options": {}},
                         {"id": "organize",
                          "options": {"excludeByName": {"Time": True, "Value #C": True},
                                      "renameByName": {"Value #A": "online",
                                                       "Value #B": "last seen"}}}],
        overrides=[{"matcher": {"id": "byName", "options": "last seen"},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}]}],
        options={"showHeader": True, "cellHeight": "sm",
                 "sortBy": [{"displayName": "device", "desc": False}]})
    return [
        [stat("Devices online", "The gateway's claude_device_online when it is scraped, else "
              "devices with a sample in the last 5 minutes.", [ANY], DEVICES_ONLINE, "short",
              w=4),
         stat("Devices known", "Devices with a series in the time range.", [ANY],
              "count(count by (device) (last_over_time(claude_cost_usd_total{%s}[$__range])))"
              % D, "short", w=4),
         stat("Gateway series", "Series the gateway holds.", [GATEWAY],
              "sum(ccmon_gateway_series)", "short", w=4),
         stat("Gateway store size", "The gateway's RocksDB on disk.", [GATEWAY],
              "sum(ccmon_gateway_store_bytes)", "bytes", w=4),
         stat("Agents behind", "Bytes appended to transcripts and not read yet, all scraped "
              "agents.", [AGENT_SCRAPE], "sum(ccmon_agent_bytes_behind)", "bytes", w=4),
         stat("Agent outbox", "Samples waiting in the scraped agents' outboxes.", [AGENT_SCRAPE],
              "sum(ccmon_agent_outbox_samples)", "short", w=4)],
        [devices_table,
         series("Seconds since each device last wrote", "Now minus the gateway's "
                "claude_device_last_seen_timestamp_seconds.", [GATEWAY],
                [target("time() - max by (device) (claude_device_last_seen_timestamp_seconds"
                        "{%s})" % D, "{{device}}")], "s", w=12, legend_calcs=("last",))],
        [series("Agent lag: read to acknowledged", "90th percentile of the time from reading "
                "transcript lines to the target's 2xx, per agent (ccmon_agent_append_to_ack_"
                "seconds), and bytes not read yet.", [AGENT_SCRAPE],
                [target("histogram_quantile(0.9, sum by (instance, le) (rate(ccmon_agent_"
                        "append_to_ack_seconds_bucket[%s])))" % rate, "p90 {{instance}}")],
                "s", w=12, legend_calcs=("mean", "max")),
         series("Agent outbox depth", "Samples and requests waiting in each agent's outbox "
                "(a growing outbox: the target refuses or is unreachable).", [AGENT_SCRAPE],
                [target("sum by (instance) (ccmon_agent_outbox_samples)", "samples {{instance}}"),
                 target("sum by (instance) (ccmon_agent_outbox_requests)",
                        "requests {{instance}}", ref="B")],
                "short", w=12, legend_calcs=("last", "max"))],
        [series("Gateway ingest", "Samples stored per second, and write requests per second by "
                "status code.", [GATEWAY],
                [target("sum(rate(ccmon_gateway_samples_accepted_total[%s]))" % rate,
                        "samples stored/s"),
                 target("sum by (code) (rate(ccmon_gateway_write_requests_total[%s]))" % rate,
                        "requests/s {{code}}", ref="B")],
                "short", w=12, legend_calcs=("mean", "max")),
         series("Gateway duplicate and rejected samples", "Per second: samples dropped as "
                "duplicates (at or before their series' last sample: retries, re-sends), "
                "refused by reason, and requests limited by reason.", [GATEWAY],
                [target("sum(rate(ccmon_gateway_samples_duplicate_total[%s]))" % rate,
                        "duplicate"),
                 target("sum by (reason) (rate(ccmon_gateway_samples_rejected_total[%s]))"
                        % rate, "rejected {{reason}}", ref="B"),
                 target("sum by (reason) (rate(ccmon_gateway_write_requests_limited_total[%s]))"
                        % rate, "limited {{reason}}", ref="C")],
                "short", w=12, legend_calcs=("mean", "max"))],
        [series("Forward queue per destination", "Samples queued for each --forward "
                "destination.", [GATEWAY],
                [target("sum by (destination) (ccmon_gateway_forward_queue_samples)",
                        "{{destination}}")], "short", w=8, legend_calcs=("last", "max")),
         series("Forward lag per destination", "Age of the oldest sample queued for each "
                "destination (0: none queued).", [GATEWAY],
                [target("max by (destination) (ccmon_gateway_forward_lag_seconds)",
                        "{{destination}}")], "s", w=8, legend_calcs=("last", "max")),
         series("Forwarded, failed and dropped per destination", "Samples per second each "
                "destination took, refused for good, and dropped (queue limit, invalid).",
                [GATEWAY],
                [target("sum by (destination) (rate(ccmon_gateway_forward_samples_sent_total"
                        "[%s]))" % rate, "sent {{destination}}"),
                 target("sum by (destination) (rate(ccmon_gateway_forward_samples_failed_total"
                        "[%s]))" % rate, "failed {{destination}}", ref="B"),
                 target("sum by (destination, reason) (rate(ccmon_gateway_forward_samples_"
                        "dropped_total[%s]))" % rate, "dropped {{reason}} {{destination}}",
                        ref="C")],
                "short", w=8, legend_calcs=("mean", "max"))],
    ]


def variables():
    def query_var(name, label, query):
        return {"type": "query", "name": name, "label": label, "datasource": DS,
                # The classic string form: every Grafana version's Prometheus data source reads
                # it (and migrates it to its own editor's object when the variable is edited).
                "query": query,
                "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*",
                "sort": 1, "regex": ""}
    return [
        {"type": "datasource", "name": "datasource", "label": "Data source",
         "query": "prometheus", "refresh": 1, "regex": ""},
        query_var("device", "Device", "label_values(claude_cost_usd_total, device)"),
        query_var("model", "Model",
                  'label_values(claude_cost_usd_total{device=~"$device"}, model)'),
        query_var("project", "Project",
                  'label_values(claude_cost_usd_total{device=~"$device"}, project)'),
    ]


DASHBOARDS = [
    ("overview", "ccmon-overview", "ccmon / Overview",
     "What Claude Code cost over the time range: by model, device and project; tokens by type; "
     "cache savings; requests; active sessions and devices online.", overview, "now-7d"),
    ("trends", "ccmon-trends", "ccmon / Trends",
     "How use changes day by day: daily cost and tokens by model, when people work (weekday x "
     "hour), sessions and prompts, tools, API errors and web searches.", trends, "now-30d"),
    ("per-request", "ccmon-per-request", "ccmon / Per request",
     "What one request costs and looks like: the cost distribution and percentiles, request "
     "rate, input/output ratio, and tokens nobody priced.", per_request, "now-24h"),
    ("fleet", "ccmon-fleet", "ccmon / Fleet and pipeline",
     "Is every device reporting and is the pipeline healthy: devices online and last seen, "
     "agent lag and outboxes, gateway ingest, duplicates and rejections, forward queues.",
     fleet, "now-6h"),
]


def build(slug, uid, title, description, rows_fn, time_from):
    panels, pid, y = [], 1, 0
    for row in rows_fn():
        x, h = 0, 0
        for p in row:
            panels.append(p.json(pid, x, y))
            pid += 1
            x += p.w
            h = max(h, p.h)
        assert x <= 24, "%s: a row wider than 24 (%d)" % (slug, x)
        y += h
    links = [{"type": "dashboards", "tags": ["ccmon"], "asDropdown": False, "title": "ccmon",
              "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
              "tooltip": "", "url": ""}]
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["ccmon", "claude-code"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "refresh": "1m",
        "time": {"from": time_from, "to": "now"},
        "links": links,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": variables()},
        "panels": panels,
    }


def render(d):
    return json.dumps(d, indent=2, ensure_ascii=False) + "\n"


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] and not check:
        sys.exit("usage: generate.py [--check]")
    here = os.path.dirname(os.path.abspath(__file__))
    stale = []
    for slug, uid, title, desc, fn, time_from in DASHBOARDS:
        path = os.path.join(here, slug + ".json")
        text = render(build(slug, uid, title, desc, fn, time_from))
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old == text:
            continue
        if check:
            stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            print("wrote", path)
    if stale:
        print("out of date (run dashboards/generate.py): " + " ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
