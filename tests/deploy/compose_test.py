"""The containers, offline (issue 9 §4): Docker cannot run here, so this checks what can be.

docker-compose.yaml
- parses; the three services (gateway, prometheus, grafana) each have an image or a build whose
  context holds a Dockerfile; every bind-mounted file or directory exists in the repository;
  named volumes are declared; the gateway gets its admin token from the environment only;
- Prometheus: its mounts laid out in a temp dir as the container sees them, `promtool check
  config` passes on the --config.file and finds every dashboards/rules/*.yml (promtool also checks
  those); the remote-write receiver is on; it scrapes the gateway service's port with
  honor_labels;
- Grafana: the provisioning files (deploy/compose/grafana) are valid YAML with the expected keys;
  the datasource points at the prometheus service; the dashboard provider's path is where the
  dashboards directory is mounted, and every dashboards/*.json there parses.
Dockerfile and .dockerignore
- stages on debian:12; the build stage installs with scripts/install-deps.sh and runs exactly the
  cmake commands of README.md "Deploy" / "Binary and systemd"; every COPY source exists and is not
  excluded by .dockerignore; COPY --from names an earlier stage; the runtime stage runs as the
  fixed non-root uid the Helm chart uses, declares VOLUME /data and the gateway as entrypoint;
- the runtime stage's apt packages provide every shared library the four built binaries link
  (ldd + dpkg -S on this Debian 12 host, with the packages' dependencies);
- the build context (the repository minus .dockerignore) configures with the Dockerfile's cmake
  command (a real cmake run over a copy of exactly that context).
"""

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import integ_common as ic  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BINARIES = ("ccmon-gateway", "ccmon-agent", "ccmon-replay", "ccmon-pricing")


def load_yaml(ck, path, what):
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
        ck.check(isinstance(doc, dict), "%s parses as a YAML mapping" % what)
        return doc if isinstance(doc, dict) else {}
    except (OSError, yaml.YAMLError) as e:
        ck.check(False, "%s parses as YAML" % what, str(e))
        return {}


def bind_mounts(service):
    """(source path in the repository, target in the container) of each bind mount."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            if v.get("type") == "bind":
                out.append((os.path.normpath(os.path.join(ROOT, v["source"])), v["target"]))
            continue
        parts = v.split(":")
        if parts[0].startswith((".", "/")):
            out.append((os.path.normpath(os.path.join(ROOT, parts[0])), parts[1]))
    return out


def named_volumes(service):
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, str) and not v.split(":")[0].startswith((".", "/")):
            out.append(v.split(":")[0])
        elif isinstance(v, dict) and v.get("type") == "volume":
            out.append(v["source"])
    return out


def materialize(service, root):
    """Lays the service's bind mounts out under `root` as the container sees them."""
    for source, target in bind_mounts(service):
        dest = os.path.join(root, target.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.isdir(source):
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy(source, dest)


def in_root(root, path):
    return os.path.join(root, path.lstrip("/"))


def check_compose(ck, promtool, work):
    compose = load_yaml(ck, os.path.join(ROOT, "docker-compose.yaml"), "docker-compose.yaml")
    services = compose.get("services", {})
    ck.eq("compose: services", sorted(services), ["gateway", "grafana", "prometheus"])
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        build = svc.get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        ck.check(svc.get("image") or build, "compose: %s has an image or a build" % name)
        if context is not None:
            ck.check(os.path.isfile(os.path.join(ROOT, context, "Dockerfile")),
                     "compose: %s's build context %s has a Dockerfile" % (name, context))
        if svc.get("image") and not build:
            ck.check(re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9_.-]+", svc["image"]) is not None and
                     not svc["image"].endswith(":latest"),
                     "compose: %s's image %s has a pinned tag" % (name, svc["image"]))
        for source, target in bind_mounts(svc):
            ck.check(os.path.exists(source) and source.startswith(ROOT + os.sep),
                     "compose: %s mounts %s (exists in the repository)"
                     % (name, os.path.relpath(source, ROOT)))
        for vol in named_volumes(svc):
            ck.check(vol in declared, "compose: %s's volume %s is declared" % (name, vol))
        for dep in svc.get("depends_on", []):
            ck.check(dep in services, "compose: %s depends on service %s" % (name, dep))

    gw = services.get("gateway", {})
    ck.check(any(t == "/data" for t in [v.split(":")[1] for v in gw.get("volumes", [])
                                        if isinstance(v, str)]),
             "compose: the gateway's /data is a volume")
    env = gw.get("environment", {})
    ck.check(str(env.get("CCMON_GATEWAY_ADMIN_TOKEN", "")).startswith("${CCMON_ADMIN_TOKEN:?"),
             "compose: the admin token comes from the environment, required (no token in the repo)")
    gw_port = 9469
    ck.check(any(str(p).endswith(":%d" % gw_port) for p in gw.get("ports", [])),
             "compose: the gateway publishes 9469 for agents")
    for name in ("prometheus", "grafana"):
        ck.check(all(str(p).startswith("127.0.0.1:") for p in services[name].get("ports", [])),
                 "compose: %s is published on 127.0.0.1 only" % name)

    # Prometheus as its container sees its files.
    prom = services.get("prometheus", {})
    root = os.path.join(work, "prometheus-root")
    materialize(prom, root)
    command = prom.get("command", [])
    config = [a.split("=", 1)[1] for a in command if a.startswith("--config.file=")]
    ck.check(len(config) == 1, "compose: prometheus has --config.file")
    ck.check("--web.enable-remote-write-receiver" in command,
             "compose: prometheus accepts remote-write (direct agents, backfills)")
    rules = sorted(f for f in os.listdir(os.path.join(ROOT, "dashboards", "rules"))
                   if f.endswith(".yml"))
    ck.check(len(rules) > 0, "dashboards/rules has rule files")
    if config:
        p = subprocess.run([promtool, "check", "config", in_root(root, config[0])],
                           capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        ck.check(p.returncode == 0, "compose: promtool check config (and the rules it names)",
                 out[-2000:])
        ck.check("SUCCESS: %d rule files found" % len(rules) in out,
                 "compose: prometheus loads every dashboards/rules/*.yml (%d)" % len(rules),
                 out[-1000:])
        with open(in_root(root, config[0])) as f:
            pc = yaml.safe_load(f)
        gw_jobs = [j for j in pc.get("scrape_configs", [])
                   if any("gateway:%d" % gw_port in sc.get("targets", [])
                          for sc in j.get("static_configs", []))]
        ck.check(len(gw_jobs) == 1 and gw_jobs[0].get("honor_labels") is True,
                 "compose: prometheus scrapes the gateway service with honor_labels")

    # Grafana's provisioning.
    graf = services.get("grafana", {})
    root = os.path.join(work, "grafana-root")
    materialize(graf, root)
    prov = os.path.join(root, "etc", "grafana", "provisioning")
    ds_files = sorted(os.listdir(os.path.join(prov, "datasources")))
    db_files = sorted(os.listdir(os.path.join(prov, "dashboards")))
    ck.check(ds_files and db_files, "compose: grafana has datasource and dashboard provisioning")
    prom_port = 9090
    for f in ds_files:
        doc = load_yaml(ck, os.path.join(prov, "datasources", f), "grafana datasources/" + f)
        ds = doc.get("datasources") or []
        ck.check(doc.get("apiVersion") == 1 and len(ds) == 1,
                 "grafana datasources/%s: apiVersion 1, one datasource" % f)
        for d in ds:
            ck.check(d.get("type") == "prometheus" and d.get("access") == "proxy" and
                     d.get("url") == "http://prometheus:%d" % prom_port and d.get("uid") and
                     d.get("name") and set(d) <= {"name", "uid", "type", "access", "url",
                                                  "isDefault", "editable", "jsonData"},
                     "grafana datasources/%s: the compose prometheus service" % f, repr(d))
    for f in db_files:
        doc = load_yaml(ck, os.path.join(prov, "dashboards", f), "grafana dashboards/" + f)
        providers = doc.get("providers") or []
        ck.check(doc.get("apiVersion") == 1 and len(providers) >= 1,
                 "grafana dashboards/%s: apiVersion 1, providers" % f)
        for p in providers:
            path = (p.get("options") or {}).get("path", "")
            ck.check(p.get("type") == "file" and p.get("name") and path,
                     "grafana dashboards/%s: a file provider with a path" % f, repr(p))
            sources = [s for s, t in bind_mounts(graf) if t.rstrip("/") == path.rstrip("/")]
            ck.eq("grafana dashboards/%s: the provider's path is the dashboards/ mount" % f,
                  [os.path.relpath(s, ROOT) for s in sources], ["dashboards"])
            jsons = [n for n in os.listdir(in_root(root, path)) if n.endswith(".json")]
            ck.info("%d dashboard(s) in dashboards/" % len(jsons))
            for n in jsons:
                try:
                    with open(os.path.join(in_root(root, path), n)) as fh:
                        dash = json.load(fh)
                    ck.check(isinstance(dash, dict) and dash.get("uid"),
                             "dashboards/%s parses and has a uid" % n)
                except ValueError as e:
                    ck.check(False, "dashboards/%s parses" % n, str(e))


def dockerfile_instructions(text):
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    out, current = [], ""
    for line in text.split("\n"):
        if not current and (line.strip().startswith("#") or not line.strip()):
            continue
        if line.strip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def ignore_patterns():
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        return [l.strip() for l in f if l.strip() and not l.strip().startswith("#")]


def ignored(rel, patterns):
    """Docker's rule, simplified (no '!' exceptions here): a path is excluded when it or one of
    its parent directories matches a pattern; '**/' matches any number of directories."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for p in patterns:
            if p.startswith("!"):
                raise ValueError(".dockerignore exceptions are not handled by this test")
            if fnmatch.fnmatchcase(prefix, p):
                return True
            if p.startswith("**/") and (fnmatch.fnmatchcase(prefix, p[3:]) or
                                        fnmatch.fnmatchcase(prefix.split("/")[-1], p[3:])):
                return True
    return False


def readme_build_commands():
    """The commands of README.md "### Binary and systemd"'s first sh block."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("### Binary and systemd", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [" ".join(l.split()) for l in block.split("\n") if l.strip()]


def check_dockerfile(ck, binaries, work):
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        instructions = dockerfile_instructions(f.read())
    patterns = ignore_patterns()
    stages, current = [], None
    for word, rest in instructions:
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            current = {"image": m.group(1), "name": m.group(2), "ins": []}
            stages.append(current)
        elif current is not None:
            current["ins"].append((word, rest))
    ck.eq("Dockerfile: stages", [(s["name"], s["image"]) for s in stages],
          [("build", "debian:12"), ("runtime", "debian:12")])
    if len(stages) != 2:
        return None
    build, runtime = stages
    runs = [r for w, r in build["ins"] if w == "RUN"]
    ck.check(any(r.startswith("scripts/install-deps.sh") for r in runs),
             "Dockerfile: the build stage installs with scripts/install-deps.sh")
    docker_cmds = []
    for r in runs:
        docker_cmds += [" ".join(c.split()) for c in r.split("&&")]
    want = readme_build_commands()
    got = [c for c in docker_cmds if c.startswith(("scripts/install-deps.sh", "cmake "))]
    # The Dockerfile runs one more step after install-deps (apt lists removed); the README's
    # `-j"$(nproc)"` is the same text in both.
    ck.eq("Dockerfile: build commands == README 'Binary and systemd'", got, want)
    cmake_configure = next((c for c in want if c.startswith("cmake -S")), None)
    ck.check(all(b in " ".join(want) for b in BINARIES),
             "README/Dockerfile build and install all four binaries")
    for stage in stages:
        for word, rest in stage["ins"]:
            if word != "COPY":
                continue
            args = shlex.split(rest)
            flags = [a for a in args if a.startswith("--")]
            paths = [a for a in args if not a.startswith("--")]
            sources = paths[:-1]
            if any(f.startswith("--from=") for f in flags):
                src_stage = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")][0]
                names = [s["name"] for s in stages[:stages.index(stage)]]
                ck.check(src_stage in names, "Dockerfile: COPY --from=%s names an earlier stage"
                         % src_stage)
                continue
            for src in sources:
                path = os.path.normpath(os.path.join(ROOT, src))
                ck.check(os.path.exists(path), "Dockerfile: COPY source %s exists" % src)
                rel = os.path.relpath(path, ROOT)
                ck.check(rel == "." or not ignored(rel, patterns),
                         "Dockerfile: COPY source %s is not in .dockerignore" % src)
    last = {w: r for w, r in runtime["ins"]}
    ck.eq("Dockerfile: runtime USER", last.get("USER"), "10001:10001")
    with open(os.path.join(ROOT, "helm", "ccmon-gateway", "values.yaml")) as f:
        values = yaml.safe_load(f)
    psc = values["podSecurityContext"]
    ck.eq("Dockerfile: the uid/gid are the Helm chart's runAsUser/runAsGroup/fsGroup",
          "%s:%s" % (psc["runAsUser"], psc["runAsGroup"]), last.get("USER"))
    ck.eq("Dockerfile: fsGroup", psc["fsGroup"], 10001)
    ck.eq("Dockerfile: VOLUME", last.get("VOLUME"), '["/data"]')
    ck.eq("Dockerfile: ENTRYPOINT", last.get("ENTRYPOINT"), '["ccmon-gateway"]')
    ck.eq("Dockerfile: CMD", last.get("CMD"), '["serve"]')
    ck.check("CCMON_GATEWAY_DATA_DIR=/data" in last.get("ENV", "") and
             "CCMON_GATEWAY_LISTEN=0.0.0.0:9469" in last.get("ENV", ""),
             "Dockerfile: serve defaults to /data and 0.0.0.0:9469")
    copies = [r for w, r in runtime["ins"] if w == "COPY"]
    ck.check(any("ccmon-*" in c and "/usr/local/bin" in c for c in copies),
             "Dockerfile: the runtime stage gets the installed ccmon-* binaries")

    # Runtime libraries: every package that owns a library the binaries link is installed
    # (listed, or a dependency of a listed package, or part of every Debian image).
    run_apt = " ".join(r for w, r in runtime["ins"] if w == "RUN" and "apt-get install" in r)
    listed = set(re.findall(r"\b(lib[a-z0-9.+-]+|ca-certificates)\b",
                            run_apt.split("apt-get install", 1)[-1]))
    needed = set()
    for b in binaries:
        out, _ = ic.run(["ldd", b], "ldd " + b)
        for lib in re.findall(r"=> (/\S+)", out):
            real = os.path.realpath(lib)
            owner = subprocess.run(["dpkg", "-S", real], capture_output=True, text=True)
            if owner.returncode != 0:  # merged /usr: try the other spelling
                alt = real[4:] if real.startswith("/usr/") else "/usr" + real
                owner = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
            ck.check(owner.returncode == 0, "%s's %s belongs to a Debian package"
                     % (os.path.basename(b), real))
            if owner.returncode == 0:
                needed.add(owner.stdout.split(":")[0])
    deps, _ = ic.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                      "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                      *sorted(listed)], "apt-cache depends")
    closure = set(re.findall(r"^(\S+)$", deps, re.M)) | set(
        re.findall(r"Depends: <?([^\s>]+)>?", deps))
    base, _ = ic.run(["dpkg-query", "-W", "-f", "${Package} ${Priority}\\n"], "dpkg-query")
    required = {l.split()[0] for l in base.splitlines() if l.endswith(" required")}
    missing = sorted(p for p in needed if p not in listed | closure | required)
    ck.check(needed and not missing,
             "Dockerfile: the runtime packages provide every linked library (%d packages)"
             % len(needed), "missing: %s" % missing)
    unused = sorted(p for p in listed if p != "ca-certificates" and p not in needed)
    ck.eq("Dockerfile: no runtime package that no binary links", unused, [])
    return cmake_configure


def check_context_configures(ck, cmake_configure, work):
    """Copies the build context (the repository minus .dockerignore) and runs the configure
    command there, as the build stage does after COPY . ."""
    patterns = ignore_patterns()
    ctx = os.path.join(work, "context")
    count = 0
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not ignored(rel_dir + d, patterns)]
        for name in filenames:
            rel = rel_dir + name
            if ignored(rel, patterns):
                continue
            os.makedirs(os.path.join(ctx, rel_dir), exist_ok=True)
            shutil.copy2(os.path.join(dirpath, name), os.path.join(ctx, rel), follow_symlinks=False)
            count += 1
    ck.info("build context: %d files" % count)
    ck.check(not os.path.exists(os.path.join(ctx, "build")) and
             not os.path.exists(os.path.join(ctx, ".git")),
             "the build context leaves out build trees and .git")
    argv = shlex.split(cmake_configure)
    p = subprocess.run(argv, cwd=ctx, capture_output=True, text=True, timeout=180)
    ck.check(p.returncode == 0, "the build context configures: %s" % cmake_configure,
             (p.stdout + p.stderr)[-3000:])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--binaries", nargs="+", required=True,
                    help="the built ccmon-gateway, ccmon-agent, ccmon-replay, ccmon-pricing")
    args = ap.parse_args()
    ck = ic.Checker("deploy.compose")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccmon-compose-") as work:
        try:
            check_compose(ck, args.promtool, work)
            ck.eq("the binaries given", sorted(os.path.basename(b) for b in args.binaries),
                  sorted(BINARIES))
            cmake_configure = check_dockerfile(ck, args.binaries, work)
            if cmake_configure:
                check_context_configures(ck, cmake_configure, work)
        except ic.TestError as e:
            print("ERROR %s" % e)
            ck.failed.append("aborted: %s" % str(e).splitlines()[0])
    print("(%.1f s)" % (time.monotonic() - t0))
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
