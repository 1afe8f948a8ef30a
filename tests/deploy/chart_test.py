"""The Helm chart helm/ccmon-gateway, offline (issue 9 §5 acceptance).

- `helm lint --strict` and `helm template` with the default values and with tests/deploy/
  values-full.yaml (every optional part on), each rendered object validated by validate-k8s.mjs
  (kubernetes-models + the prometheus-operator CRDs; unknown kinds and unknown fields fail);
- what the manifests promise: probes on /healthz and /readyz, non-root, read-only root, the PVC at
  /data, the admin token from the chart's Secret or existingSecret, forward credentials from Secrets
  mounted where the args point, the ServiceMonitor selecting exactly the main Service, the
  PrometheusRule carrying exactly the groups of files/rules (and `promtool check rules` passing);
- the real ccmon-gateway started with each rendered command line (mounts materialized in a temp
  dir): ready, the admin token works, the /metrics token is enforced, the forward destinations
  exist;
- values that break the schema (values.schema.json) or the chart's own checks are rejected;
- NOTES.txt tells how to register a device and point an agent.
No network is needed once tests/deploy/fetch-tools.sh ran (the ctest fixture does).
"""

import argparse
import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import integ_common as ic  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CHART = os.path.join(ROOT, "helm", "ccmon-gateway")
FULL_VALUES = os.path.join(HERE, "values-full.yaml")
NODE = ["node"]  # --node
SCHEMA_ERROR = "values don't meet the specifications of the schema"


class Helm:
    def __init__(self, binary, work):
        self.binary = binary
        # helm keeps caches and config under these; never the user's.
        self.env = dict(os.environ, HELM_CACHE_HOME=os.path.join(work, "helm-cache"),
                        HELM_CONFIG_HOME=os.path.join(work, "helm-config"),
                        HELM_DATA_HOME=os.path.join(work, "helm-data"))

    def run(self, *argv, chart=CHART):
        p = subprocess.run([self.binary, *argv, chart], capture_output=True, text=True,
                           env=self.env, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def template(self, *argv, chart=CHART):
        rc, out, err = self.run("template", "rel", "--namespace", "ccmon", *argv, chart=chart)
        if rc != 0:
            raise ic.TestError("helm template %s failed:\n%s" % (" ".join(argv), err))
        return out, [d for d in yaml.safe_load_all(out) if d]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind):
    found = by_kind(objects, kind)
    if len(found) != 1:
        raise ic.TestError("want one %s, got %d" % (kind, len(found)))
    return found[0]


def validate(ck, args, what, rendered_path):
    p = subprocess.run([NODE[0], os.path.join(HERE, "validate-k8s.mjs"), "--modules",
                        args.node_modules, rendered_path], capture_output=True, text=True,
                       timeout=120)
    ck.check(p.returncode == 0, "%s: every object validates (kubernetes-models)" % what,
             p.stdout[-3000:] + p.stderr[-2000:])
    return p.stdout


def check_validator_rejects(ck, args, work):
    """A validator that cannot fail would prove nothing: feed it what it must refuse."""
    cases = {
        "a wrong type": {"apiVersion": "apps/v1", "kind": "StatefulSet",
                         "metadata": {"name": "x"},
                         "spec": {"replicas": "two", "serviceName": "x",
                                  "selector": {"matchLabels": {"a": "b"}},
                                  "template": {"spec": {"containers": [{"name": "c"}]}}}},
        "a misspelt field": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                             "spec": {"ports": [{"port": 80, "targetPort": "http"}],
                                      "selecter": {"a": "b"}}},
        "a misspelt nested field": {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
            "spec": {"serviceName": "x", "selector": {"matchLabels": {"a": "b"}},
                     "template": {"spec": {"containers": [
                         {"name": "c", "securityContext": {"readOnlyRootFilesytem": True}}]}}}},
        "an unknown kind": {"apiVersion": "example.com/v1", "kind": "Widget",
                            "metadata": {"name": "x"}},
        "a CRD field misspelt": {"apiVersion": "monitoring.coreos.com/v1",
                                 "kind": "ServiceMonitor", "metadata": {"name": "x"},
                                 "spec": {"selector": {}, "endpoints": [{"prot": "http"}]}},
        "no name": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
    }
    for what, obj in cases.items():
        path = os.path.join(work, "bad.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(obj, f)
        p = subprocess.run([NODE[0], os.path.join(HERE, "validate-k8s.mjs"), "--modules",
                            args.node_modules, path], capture_output=True, text=True, timeout=60)
        ck.check(p.returncode == 1 and "FAIL" in p.stdout,
                 "the validator refuses %s" % what, p.stdout + p.stderr)


def container_of(sts):
    containers = sts["spec"]["template"]["spec"]["containers"]
    return containers[0]


def mount_for(container, volumes, path):
    """The (volumeMount, volume) that holds `path`, the longest mountPath first."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"]):
                best = m
    if best is None:
        return None, None
    return best, next((v for v in volumes if v["name"] == best["name"]), None)


def arg_value(args_list, flag):
    return [a.split("=", 1)[1] for a in args_list if a.startswith(flag + "=")]


def check_common(ck, what, objects, values):
    sts = one(objects, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    c = container_of(sts)
    args = c["args"]
    ck.eq("%s: the container runs `serve`" % what, args[0], "serve")
    ck.eq("%s: --data-dir" % what, arg_value(args, "--data-dir"), ["/data"])
    ck.eq("%s: the image" % what, c["image"],
          "%s:%s" % (values["image"]["repository"], values["image"]["tag"] or "0.1.0"))
    ck.eq("%s: startup/liveness/readiness probe paths" % what,
          [c[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")],
          ["/healthz", "/healthz", "/readyz"])
    ck.check(all(c[p]["httpGet"]["port"] == "http"
                 for p in ("startupProbe", "livenessProbe", "readinessProbe")) and
             c["ports"][0]["name"] == "http" and c["ports"][0]["containerPort"] == 9469 and
             arg_value(args, "--listen") == ["0.0.0.0:9469"],
             "%s: probes and the port named http are the port --listen serves" % what)
    sc, psc = c["securityContext"], pod["securityContext"]
    ck.check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0 and
             sc.get("readOnlyRootFilesystem") is True and
             sc.get("allowPrivilegeEscalation") is False and
             sc.get("capabilities", {}).get("drop") == ["ALL"],
             "%s: non-root, read-only root filesystem, no privilege escalation, no capabilities"
             % what, json.dumps([psc, sc]))
    ck.eq("%s: fsGroup = runAsUser (the PVC is writable by the image's user)" % what,
          psc.get("fsGroup"), psc.get("runAsUser"))
    ck.check(pod.get("automountServiceAccountToken") is False,
             "%s: no service account token in the pod" % what)
    ck.check(pod.get("enableServiceLinks") is False,
             "%s: no service links (no CCMON_GATEWAY_SERVICE_HOST … among the settings' "
             "variables)" % what)
    ck.check(c.get("resources", {}).get("requests") and c["resources"].get("limits"),
             "%s: resources set" % what)
    data_mount, data_volume = mount_for(c, pod["volumes"], "/data")
    claims = {t["metadata"]["name"]: t for t in sts["spec"]["volumeClaimTemplates"]}
    ck.check(data_mount is not None and data_mount["mountPath"] == "/data" and
             data_volume is None and data_mount["name"] in claims,
             "%s: /data is the StatefulSet's PVC" % what)
    ck.eq("%s: PVC size" % what,
          claims.get("data", {}).get("spec", {}).get("resources", {}).get("requests", {})
          .get("storage"), values["persistence"]["size"])
    tmp_mount, tmp_volume = mount_for(c, pod["volumes"], "/tmp")
    ck.check(tmp_volume is not None and "emptyDir" in tmp_volume,
             "%s: /tmp is an emptyDir (root read-only)" % what)
    ck.eq("%s: replicas" % what, sts["spec"]["replicas"], values["replicas"])
    headless = [s for s in by_kind(objects, "Service") if s["spec"].get("clusterIP") == "None"]
    ck.check(len(headless) == 1 and headless[0]["metadata"]["name"] == sts["spec"]["serviceName"],
             "%s: the StatefulSet's serviceName is its headless Service" % what)
    selector = sts["spec"]["selector"]["matchLabels"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    ck.check(all(labels.get(k) == v for k, v in selector.items()),
             "%s: the pod template carries the selector's labels" % what)
    for svc in by_kind(objects, "Service"):
        sel = svc["spec"]["selector"]
        ck.check(all(labels.get(k) == v for k, v in sel.items()
                     if k != "statefulset.kubernetes.io/pod-name"),
                 "%s: Service %s selects the gateway's pods" % (what, svc["metadata"]["name"]))
    # Every file the command line names lies in a mounted Secret or ConfigMap that has it.
    for flag in ("--admin-token-file", "--metrics-token-file", "--config",
                 "--forward-bearer-token-file", "--forward-basic-auth-password-file"):
        for path in arg_value(args, flag):
            m, v = mount_for(c, pod["volumes"], path)
            rel = os.path.relpath(path, m["mountPath"]) if m else None
            items = []
            if v and "secret" in v:
                items = [i["path"] for i in v["secret"].get("items", [])]
            elif v and "configMap" in v:
                cm = [o for o in by_kind(objects, "ConfigMap")
                      if o["metadata"]["name"] == v["configMap"]["name"]]
                items = list(cm[0]["data"]) if cm else []
            ck.check(rel in items, "%s: %s %s is a file of a mounted volume" % (what, flag, path),
                     "mount %r volume %r" % (m, v))
    return sts


def check_default(ck, objects, values):
    what = "default values"
    sts = check_common(ck, what, objects, values)
    kinds = sorted(o["kind"] for o in objects)
    ck.eq("%s: the objects" % what, kinds, ["Secret", "Service", "Service", "StatefulSet"])
    secret = one(objects, "Secret")
    token = base64.b64decode(secret["data"]["admin-token"]).decode()
    ck.check(re.fullmatch(r"[A-Za-z0-9]{48}", token) is not None,
             "%s: the chart's Secret holds a random 48-character admin token" % what)
    c = container_of(sts)
    m, v = mount_for(c, sts["spec"]["template"]["spec"]["volumes"],
                     arg_value(c["args"], "--admin-token-file")[0])
    ck.eq("%s: --admin-token-file reads the chart's Secret" % what,
          v and v["secret"]["secretName"], secret["metadata"]["name"])
    ck.check(not any(a.startswith("--forward") or a.startswith("--metrics-token") or
                     a == "--allow-anonymous" or a.startswith("--config") for a in c["args"]),
             "%s: no forwarding, open /metrics, device keys required, no config file" % what,
             " ".join(c["args"]))


def check_full(ck, objects, values, promtool, work):
    what = "values-full.yaml"
    sts = check_common(ck, what, objects, values)
    c = container_of(sts)
    pod = sts["spec"]["template"]["spec"]
    ck.eq("%s: no Secret created (existingSecret)" % what, by_kind(objects, "Secret"), [])
    secrets_used = sorted(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    ck.eq("%s: the Secrets mounted" % what, secrets_used,
          ["ccmon-admin", "ccmon-metrics", "mimir-basic", "victoria-token"])
    # The forward flags, in the order that gives each its destination.
    fwd = [a for a in c["args"] if a.startswith("--forward")]
    ck.eq("%s: forward flags in order" % what, fwd, [
        "--forward=https://mimir.example.com/api/v1/push",
        "--forward-header=X-Scope-OrgID: team-a",
        "--forward-header=X-Extra-Header: some value",
        "--forward-label=cluster=ccmon-eu",
        "--forward-label=replica=$(POD_NAME)",
        "--forward-basic-auth-user=team-a",
        "--forward-basic-auth-password-file=/etc/ccmon/forward/0/basic/password",
        "--forward=http://victoria.monitoring.svc:8428/api/v1/write",
        "--forward-bearer-token-file=/etc/ccmon/forward/1/bearer/token"])
    ck.eq("%s: $(POD_NAME) is the pod's name" % what, c.get("env"), [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    ck.check(all(m.get("readOnly") for m in c["volumeMounts"]
                 if m["mountPath"].startswith("/etc/ccmon")),
             "%s: secrets and settings mounted read-only" % what)
    cm = one(objects, "ConfigMap")
    ck.eq("%s: the settings file" % what, cm["data"]["gateway.conf"].split("\n"),
          ["forward-shards = 2", "max-series-per-device = 20000", "online-window = 2m", ""])
    ck.check(sts["spec"]["template"]["metadata"]["annotations"].get("checksum/settings"),
             "%s: a settings checksum restarts the pods on change" % what)
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    ck.eq("%s: Services" % what, sorted(services), [
        "rel-ccmon-gateway", "rel-ccmon-gateway-0", "rel-ccmon-gateway-1",
        "rel-ccmon-gateway-headless"])
    ck.eq("%s: shard Services select one pod each" % what,
          [services["rel-ccmon-gateway-%d" % i]["spec"]["selector"]
           .get("statefulset.kubernetes.io/pod-name") for i in range(2)],
          ["rel-ccmon-gateway-0", "rel-ccmon-gateway-1"])
    ing = one(objects, "Ingress")
    rule = ing["spec"]["rules"][0]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    ck.check(rule["host"] == "ccmon.example.com" and backend["name"] == "rel-ccmon-gateway" and
             backend["port"] == {"name": "http"} and ing["spec"]["ingressClassName"] == "nginx" and
             ing["spec"]["tls"] == [{"hosts": ["ccmon.example.com"], "secretName": "ccmon-tls"}],
             "%s: Ingress routes the host to the main Service over TLS" % what, json.dumps(ing))
    sm = one(objects, "ServiceMonitor")
    matched = [n for n, s in services.items()
               if all(s["metadata"]["labels"].get(k) == v
                      for k, v in sm["spec"]["selector"]["matchLabels"].items())]
    ck.eq("%s: the ServiceMonitor selects the main Service only (each pod scraped once)" % what,
          matched, ["rel-ccmon-gateway"])
    ep = sm["spec"]["endpoints"][0]
    ck.check(ep["port"] == "http" and ep["path"] == "/metrics" and ep["honorLabels"] is True and
             ep["authorization"]["credentials"] == {"name": "ccmon-metrics", "key": "metrics"},
             "%s: ServiceMonitor endpoint: /metrics, honorLabels, the metrics token" % what,
             json.dumps(ep))
    ck.eq("%s: ServiceMonitor labels (for the operator's selector)" % what,
          sm["metadata"]["labels"].get("release"), "kube-prometheus-stack")
    pr = one(objects, "PrometheusRule")
    want_groups = []
    rules_dir = os.path.join(CHART, "files", "rules")
    for name in sorted(os.listdir(rules_dir)):
        if name.endswith(".yml"):
            with open(os.path.join(rules_dir, name)) as f:
                want_groups += yaml.safe_load(f)["groups"]
    ck.check(len(want_groups) > 0, "%s: files/rules has rule groups" % what)
    ck.eq("%s: the PrometheusRule holds exactly the groups of files/rules" % what,
          pr["spec"]["groups"], want_groups)
    rules_file = os.path.join(work, "rendered-rules.yml")
    with open(rules_file, "w") as f:
        yaml.safe_dump({"groups": pr["spec"]["groups"]}, f)
    p = subprocess.run([promtool, "check", "rules", rules_file], capture_output=True, text=True)
    ck.check(p.returncode == 0, "%s: promtool check rules passes on the PrometheusRule" % what,
             p.stdout + p.stderr)


class ChartGateway(ic.ServerProcess):
    """ccmon-gateway started with a rendered container's args, its mounts under `root`."""

    def __init__(self, gateway, objects, root, secret_values, ordinal=0, replace=None):
        sts = one(objects, "StatefulSet")
        pod_name = "%s-%d" % (sts["metadata"]["name"], ordinal)
        self.container = container_of(sts)
        pod = sts["spec"]["template"]["spec"]
        self.root = root
        configmaps = {o["metadata"]["name"]: o for o in by_kind(objects, "ConfigMap")}
        chart_secrets = {o["metadata"]["name"]: o for o in by_kind(objects, "Secret")}
        self.files = {}
        for m in self.container["volumeMounts"]:
            target = self.local(m["mountPath"])
            os.makedirs(target, exist_ok=True)
            v = next((v for v in pod["volumes"] if v["name"] == m["name"]), None)
            if v is None or "emptyDir" in v:
                continue
            if "configMap" in v:
                for key, text in configmaps[v["configMap"]["name"]]["data"].items():
                    self.write(os.path.join(target, key), text)
            elif "secret" in v:
                name = v["secret"]["secretName"]
                for item in v["secret"]["items"]:
                    if name in chart_secrets:
                        value = base64.b64decode(chart_secrets[name]["data"][item["key"]]).decode()
                    else:
                        value = secret_values[(name, item["key"])]
                    self.write(os.path.join(target, item["path"]), value + "\n")
        # $(VAR) in args: Kubernetes expands the container's env (here only the pod's name).
        env = {}
        for e in self.container.get("env", []):
            field = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if field != "metadata.name":
                raise ic.TestError("env %s: only metadata.name is handled here" % e["name"])
            env[e["name"]] = pod_name
        args = [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], a)
                for a in self.container["args"]]
        # `replace`: text to change in the args (a forward URL pointed at a local receiver).
        for old, new in (replace or {}).items():
            args = [a.replace(old, new) for a in args]

        def argv(port):
            out = [gateway]
            for a in args:
                if a.startswith("--listen="):
                    a = "--listen=127.0.0.1:%d" % port
                elif a.startswith("--") and "=" in a:
                    flag, value = a.split("=", 1)
                    if value.startswith("/"):
                        a = "%s=%s" % (flag, self.local(value))
                out.append(a)
            return out
        super().__init__("gateway", argv, "/readyz", root)

    def local(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text)
        self.files[path] = text


def http(url, method="GET", body=None, token=None):
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def check_runs(ck, gateway, what, objects, work, secret_values, admin_token, metrics_token,
               destinations):
    root = os.path.join(work, "run-" + what.split()[0].replace(".", "-"))
    gw = ChartGateway(gateway, objects, root, secret_values)
    try:
        gw.start()
        ck.check(True, "%s: ccmon-gateway starts with the rendered args and is ready" % what)
        status, _ = http(gw.url("/healthz"))
        ck.eq("%s: /healthz" % what, status, 200)
        status, body = http(gw.url("/api/v1/devices"), "POST",
                            json.dumps({"name": "laptop"}).encode(), admin_token)
        ck.check(status == 201 and json.loads(body).get("key", "").startswith("dk_"),
                 "%s: the admin token from the mounted Secret registers a device" % what,
                 "%d %s" % (status, body[:200]))
        status, _ = http(gw.url("/api/v1/devices"), token="wrong-token")
        ck.check(status in (401, 403), "%s: a wrong admin token is refused" % what, str(status))
        status, metrics = http(gw.url("/metrics"), token=metrics_token)
        ck.eq("%s: /metrics with the token" % what, status, 200)
        if metrics_token:
            status, _ = http(gw.url("/metrics"))
            ck.eq("%s: /metrics without the metrics token" % what, status, 401)
        got = sorted(set(re.findall(r'ccmon_gateway_forward_queue_samples\{[^}]*destination="'
                                    r'([^"]+)"', metrics)))
        ck.eq("%s: forward destinations the gateway runs" % what, got, sorted(destinations))
    except ic.TestError as e:
        ck.check(False, "%s: ccmon-gateway runs with the rendered args" % what, str(e))
    finally:
        gw.stop()


def check_rejected(ck, helm, work):
    """Values the schema or the templates must refuse, each alone on top of the defaults."""
    bad = [
        ("an unknown top-level key", {"replica": 2}),
        ("an unknown nested key", {"ingress": {"hots": "x"}}),
        ("replicas as a string", {"replicas": "2"}),
        ("replicas 0", {"replicas": 0}),
        ("a forward URL that is not http(s)", {"forward": [{"url": "ftp://x/api/v1/write"}]}),
        ("credentials in a forward URL",
         {"forward": [{"url": "https://user:pass@mimir.example.com/api/v1/push"}]}),
        ("a forward without url", {"forward": [{"tenant": "a"}]}),
        ("an unknown forward key",
         {"forward": [{"url": "http://x/api/v1/write", "bearerToken": "inline-secret"}]}),
        ("basic auth without its password Secret",
         {"forward": [{"url": "http://x/api/v1/write", "basicAuth": {"username": "u"}}]}),
        ("a tenant with a space", {"forward": [{"url": "http://x/w", "tenant": "a b"}]}),
        ("a header value with a newline",
         {"forward": [{"url": "http://x/w", "headers": {"X-A": "a\nX-B: b"}}]}),
        ("a forward label the series carry (device)",
         {"forward": [{"url": "http://x/w", "labels": {"device": "x"}}]}),
        ("a reserved forward label (__replica__)",
         {"forward": [{"url": "http://x/w", "labels": {"__replica__": "x"}}]}),
        ("a reserved replica label name",
         {"forward": [{"url": "http://x/w", "replicaLabel": "__replica__"}]}),
        ("an empty forward label value", {"forward": [{"url": "http://x/w", "labels": {"c": ""}}]}),
        ("a setting the chart owns (data-dir)", {"settings": {"data-dir": "/tmp"}}),
        ("a forward flag as a setting", {"settings": {"forward": "http://x/w"}}),
        ("a setting value with a newline (config injection)",
         {"settings": {"max-future": "5m\nallow-anonymous = true"}}),
        ("a setting that is not a string", {"settings": {"max-future": 5}}),
        ("service.port 70000", {"service": {"port": 70000}}),
        ("image.pullPolicy Sometimes", {"image": {"pullPolicy": "Sometimes"}}),
        ("an admin token key with a slash", {"adminToken": {"key": "a/b"}}),
        ("a persistence size that is not a quantity", {"persistence": {"size": "lots"}}),
        ("serviceMonitor.interval not a duration", {"serviceMonitor": {"interval": "often"}}),
    ]
    for what, values in bad:
        path = os.path.join(work, "bad-values.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(values, f)
        for cmd in ("lint", "template"):
            rc, out, err = helm.run(cmd, *(["rel"] if cmd == "template" else []), "-f", path)
            ck.check(rc != 0 and SCHEMA_ERROR in out + err,
                     "helm %s refuses %s (schema)" % (cmd, what),
                     "rc %d: %s" % (rc, (out + err)[-600:]))
    # The template's own check: a PrometheusRule without rule files.
    chart = os.path.join(work, "chart-without-rules")
    shutil.copytree(CHART, chart)
    shutil.rmtree(os.path.join(chart, "files", "rules"))
    rc, out, err = helm.run("template", "rel", "--set", "prometheusRule.enabled=true", chart=chart)
    ck.check(rc != 0 and "no files/rules" in err,
             "helm template refuses prometheusRule.enabled without files/rules", err[-400:])
    # And one that is merely unusual passes (the schema is not too strict): defaults off.
    rc, out, err = helm.run("template", "rel", "--set", "adminToken.create=false",
                            "--set", "allowAnonymous=true")
    ck.check(rc == 0 and "--allow-anonymous" in out and "--admin-token-file" not in out and
             "kind: Secret" not in out,
             "adminToken.create=false + allowAnonymous: no Secret, no admin API, anonymous writes",
             err[-400:])


def check_notes(ck, helm, work):
    """NOTES.txt rendered through a copy of the chart that puts it into a ConfigMap."""
    chart = os.path.join(work, "chart-notes")
    shutil.copytree(CHART, chart)
    with open(os.path.join(CHART, "templates", "NOTES.txt")) as f:
        notes = f.read()
    with open(os.path.join(chart, "templates", "_test_notes.tpl"), "w") as f:
        f.write('{{- define "test.notes" }}' + notes + "{{- end }}\n")
    with open(os.path.join(chart, "templates", "test-notes.yaml"), "w") as f:
        f.write('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n'
                '  notes: {{ include "test.notes" . | quote }}\n')
    for what, argv, want in [
        ("default", [], ["kubectl -n ccmon exec rel-ccmon-gateway-0 -- \\",
                         "ccmon-gateway device add laptop --server http://127.0.0.1:9469",
                         "--admin-token-file /etc/ccmon/admin/admin-token",
                         "kubectl -n ccmon get secret rel-ccmon-gateway-admin",
                         "ccmon-agent setup --url http://GATEWAY:9469/api/v1/write --key dk_",
                         "ccmon-agent test && ccmon-agent start"]),
        ("values-full", ["-f", FULL_VALUES],
         ["--admin-token-file /etc/ccmon/admin/token", "get secret ccmon-admin",
          "ccmon-agent setup --url https://ccmon.example.com/api/v1/write --key dk_",
          "With 2 replicas every pod is a separate gateway", "Service rel-ccmon-gateway-N",
          "Forwarding to https://mimir.example.com/api/v1/push (tenant team-a)"]),
    ]:
        _, objects = helm.template(*argv, "--show-only", "templates/test-notes.yaml", chart=chart)
        text = objects[0]["data"]["notes"]
        missing = [w for w in want if w not in text]
        ck.check(not missing, "NOTES.txt (%s) tells how to register a device and point an agent"
                 % what, "missing %r in:\n%s" % (missing, text))


def check_sync_script(ck, work):
    """scripts/sync-chart-rules.sh on a scratch tree: --check sees a changed and a stale copy,
    a run copies and removes, then --check is clean."""
    root = os.path.join(work, "sync-tree")
    os.makedirs(os.path.join(root, "scripts"))
    shutil.copy(os.path.join(ROOT, "scripts", "sync-chart-rules.sh"), os.path.join(root, "scripts"))
    src = os.path.join(root, "dashboards", "rules")
    dst = os.path.join(root, "helm", "ccmon-gateway", "files", "rules")
    os.makedirs(src)
    os.makedirs(dst)
    for name, text in (("a.yml", "groups: []\n"), ("b.yml", "groups: [{name: b, rules: []}]\n")):
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
    with open(os.path.join(dst, "a.yml"), "w") as f:
        f.write("groups: [{name: old, rules: []}]\n")
    with open(os.path.join(dst, "gone.yml"), "w") as f:
        f.write("groups: []\n")
    script = os.path.join(root, "scripts", "sync-chart-rules.sh")
    p = subprocess.run([script, "--check"], capture_output=True, text=True)
    ck.check(p.returncode == 1 and "differs: a.yml" in p.stdout and "differs: b.yml" in p.stdout
             and "stale: gone.yml" in p.stdout and os.path.exists(os.path.join(dst, "gone.yml")),
             "sync-chart-rules.sh --check reports a changed, a missing and a stale copy, changes "
             "nothing", p.stdout + p.stderr)
    p = subprocess.run([script], capture_output=True, text=True)
    same = all(open(os.path.join(src, n)).read() == open(os.path.join(dst, n)).read()
               for n in ("a.yml", "b.yml"))
    ck.check(p.returncode == 0 and same and sorted(os.listdir(dst)) == ["a.yml", "b.yml"],
             "sync-chart-rules.sh copies the rules and removes the stale copy", p.stderr)
    p = subprocess.run([script, "--check"], capture_output=True, text=True)
    ck.eq("sync-chart-rules.sh --check after a sync", p.returncode, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--helm", required=True)
    ap.add_argument("--node-modules", required=True, help="dir with node_modules (fetch-tools.sh)")
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--node", default="node")
    args = ap.parse_args()
    NODE[0] = args.node
    args.gateway = os.path.abspath(args.gateway)
    args.node_modules = os.path.abspath(args.node_modules)
    for tool in (args.helm, args.gateway, args.promtool, shutil.which(args.node) or args.node):
        if not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
            print("ERROR %s not found (tests/deploy/fetch-tools.sh, scripts/install-deps.sh "
                  "--test)" % tool)
            return 1
    ck = ic.Checker("deploy.chart")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccmon-chart-") as work:
        try:
            helm = Helm(args.helm, work)
            with open(os.path.join(CHART, "values.yaml")) as f:
                defaults = yaml.safe_load(f)
            with open(FULL_VALUES) as f:
                full = copy.deepcopy(defaults)
                for k, v in yaml.safe_load(f).items():
                    full[k] = v
            for what, argv in (("default values", []), ("values-full.yaml", ["-f", FULL_VALUES])):
                rc, out, err = helm.run("lint", "--strict", *argv)
                ck.check(rc == 0 and "0 chart(s) failed" in out, "helm lint --strict (%s)" % what,
                         out + err)
            check_validator_rejects(ck, args, work)
            default_text, default_objects = helm.template()
            full_text, full_objects = helm.template("-f", FULL_VALUES)
            for what, text in (("default values", default_text), ("values-full.yaml", full_text)):
                path = os.path.join(work, "rendered-%s.yaml" % what.split()[0])
                with open(path, "w") as f:
                    f.write(text)
                report = validate(ck, args, what, path)
                ck.check("SKIP" not in report, "%s: nothing skipped" % what)
            check_default(ck, default_objects, defaults)
            check_full(ck, full_objects, full, args.promtool, work)
            admin = base64.b64decode(one(default_objects, "Secret")["data"]["admin-token"]).decode()
            check_runs(ck, args.gateway, "default values", default_objects, work, {}, admin, None,
                       [])
            secret_values = {("ccmon-admin", "token"): "admin-t0ken-from-existing-secret",
                             ("ccmon-metrics", "metrics"): "metrics-t0ken",
                             ("mimir-basic", "password"): "mimir-password",
                             ("victoria-token", "token"): "victoria-bearer"}
            check_runs(ck, args.gateway, "values-full.yaml", full_objects, work, secret_values,
                       "admin-t0ken-from-existing-secret", "metrics-t0ken",
                       ["https://mimir.example.com/api/v1/push",
                        "http://victoria.monitoring.svc:8428/api/v1/write"])
            check_rejected(ck, helm, work)
            check_notes(ck, helm, work)
            check_sync_script(ck, work)
        except ic.TestError as e:
            print("ERROR %s" % e)
            ck.failed.append("aborted: %s" % str(e).splitlines()[0])
    print("(%.1f s)" % (time.monotonic() - t0))
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
