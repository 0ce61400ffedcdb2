#!/usr/bin/env python3
"""Static checks of the deploy files, for CI without a Docker engine or a cluster:

- Dockerfile: multi-stage (a build stage and a runtime stage copying from it), a non-root USER
  in the final stage, a HEALTHCHECK using vlmctl health, the tokenizer installed at
  /usr/share/vlmd/tokenizer.json (server/paths.cc's fallback), ENTRYPOINT vlmd, no `latest`
  base image tags, every COPY source present in the build context;
- deploy/compose: YAML parses; the vlmd, prometheus and grafana services; vlmd's GPU
  reservation and health check; every bind-mounted file exists; Prometheus' scrape target is
  vlmd's metrics port from the mounted vlmd.yaml; Grafana's data source points at the
  prometheus service and its dashboard provider at the mounted dashboard;
- deploy/k8s: every manifest parses and has apiVersion/kind/metadata.name; the kustomization
  lists every file; the Deployment asks for nvidia.com/gpu, probes the gRPC health service
  on the gRPC port, holds as many GPUs as vlmd.yaml's models and training.gpus use, mounts
  the ConfigMap and both PersistentVolumeClaims that exist; the
  Service selects the pod labels and targets named container ports; the ServiceMonitor
  selects the Service and scrapes a port it has;
- deploy/grafana/vlmd.json: valid JSON, unique panel ids, a datasource on every target, every
  inference metric it queries documented in docs/serving.md, every job metric registered in
  server/job_metrics.cc (once the jobs service is there).

(vlmd itself parses the vlmd.yaml files of compose and the ConfigMap: unit test
deploy_config_test.) Needs python3-yaml (scripts/setup.sh installs it).

    check_deploy.py [SOURCE_DIR]
"""

import json
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("check_deploy: needs PyYAML (Debian: python3-yaml, installed by scripts/setup.sh)",
          file=sys.stderr)
    sys.exit(1)

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(os.path.dirname(__file__), "..", ".."))
RESULTS = {"passed": 0, "failed": 0}
# Metrics of the jobs service (server/job_metrics.cc), documented with the jobs API.
JOB_METRICS = ("vlmd_job", "vlmd_gpus", "vlmd_merges", "vlmd_evaluation")


def check(ok, what):
    RESULTS["passed" if ok else "failed"] += 1
    print(("PASS " if ok else "FAIL ") + what)
    return ok


def read(rel):
    with open(os.path.join(SRC, rel), encoding="utf-8") as fh:
        return fh.read()


def get(d, *keys, default=None):
    for k in keys:
        if isinstance(d, dict) and k in d:
            d = d[k]
        elif isinstance(d, list) and isinstance(k, int) and k < len(d):
            d = d[k]
        else:
            return default
    return d


# ---------------------------------------------------------------------------------------------
# Dockerfile.

def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments)] with line continuations joined and comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
    return out


def check_dockerfile():
    ins = dockerfile_instructions(read("Dockerfile"))
    froms = [(i, a) for i, (w, a) in enumerate(ins) if w == "FROM"]
    check(len(froms) >= 2, "Dockerfile: multi-stage (%d FROM)" % len(froms))
    stages = [re.split(r"\s+as\s+", a, flags=re.I)[-1] for _, a in froms if re.search(
        r"\s+as\s+", a, re.I)]
    check(len(stages) == len(froms), "Dockerfile: every stage is named (%s)" % stages)
    last = froms[-1][0]
    final = ins[last:]
    copies_from = [a for w, a in final if w == "COPY" and "--from=" in a]
    check(any(("--from=%s" % s) in a for s in stages[:-1] for a in copies_from),
          "Dockerfile: the final stage copies from the build stage")
    users = [a for w, a in final if w == "USER"]
    check(bool(users) and users[-1].split(":")[0] not in ("root", "0"),
          "Dockerfile: the final stage runs as a non-root USER (%s)" % users)
    health = [a for w, a in final if w == "HEALTHCHECK"]
    check(bool(health) and "vlmctl" in health[-1] and "health" in health[-1],
          "Dockerfile: HEALTHCHECK runs `vlmctl health`")
    check(any(w == "COPY" and a.rstrip().endswith("/usr/share/vlmd/tokenizer.json")
              for w, a in final), "Dockerfile: tokenizer at /usr/share/vlmd/tokenizer.json")
    paths = read("server/paths.cc")
    check("/usr/share/vlmd/tokenizer.json" in paths,
          "server/paths.cc still falls back to /usr/share/vlmd/tokenizer.json")
    entry = [a for w, a in final if w == "ENTRYPOINT"]
    check(bool(entry) and "vlmd" in entry[-1], "Dockerfile: ENTRYPOINT vlmd")
    check(any(w == "EXPOSE" and "50051" in a for w, a in final), "Dockerfile: EXPOSE 50051")
    args = {m.group(1): m.group(2) for w, a in ins if w == "ARG"
            for m in [re.match(r"(\w+)=?(.*)", a)] if m}
    for _, a in froms:
        image = a.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), image)
        check(":" in image and not image.endswith(":latest"),
              "Dockerfile: base image %s has a pinned tag" % image)
    ignore = read(".dockerignore").split() if os.path.exists(os.path.join(SRC, ".dockerignore")) else []
    check("build" in ignore and ".git" in ignore, ".dockerignore leaves out build/ and .git")
    for w, a in ins:
        if w == "COPY" and "--from=" not in a:
            for src in a.split()[:-1]:
                if not src.startswith("--"):
                    check(os.path.exists(os.path.join(SRC, src)),
                          "Dockerfile: COPY source %s exists" % src)


# ---------------------------------------------------------------------------------------------
# Compose.

def check_compose():
    base = "deploy/compose"
    compose = yaml.safe_load(read(base + "/compose.yaml"))
    services = compose.get("services", {})
    for name in ("vlmd", "prometheus", "grafana"):
        check(name in services, "compose: service %s" % name)
    vlmd = services.get("vlmd", {})
    check(get(vlmd, "build", "dockerfile") == "Dockerfile" and os.path.exists(
        os.path.normpath(os.path.join(SRC, base, get(vlmd, "build", "context", default="."),
                                      "Dockerfile"))), "compose: vlmd builds the Dockerfile")
    devices = get(vlmd, "deploy", "resources", "reservations", "devices", default=[])
    check(any("gpu" in d.get("capabilities", []) for d in devices),
          "compose: vlmd reserves GPUs")
    check("vlmctl" in " ".join(get(vlmd, "healthcheck", "test", default=[])),
          "compose: vlmd health check runs vlmctl health")
    mounts = {}
    for svc_name, svc in services.items():
        for v in svc.get("volumes", []):
            # ${VAR:-default} as compose interpolates it with VAR unset.
            defaulted = re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", v)
            parts = defaulted.split(":")
            if parts[0].startswith((".", "/")):
                host = os.path.normpath(os.path.join(SRC, base, parts[0]))
                mounts[(svc_name, parts[1])] = host
                if "${" not in v:
                    check(os.path.exists(host), "compose: %s mounts %s (exists)" % (
                        svc_name, parts[0]))
            else:
                check(parts[0] in (compose.get("volumes") or {}),
                      "compose: named volume %s is declared" % parts[0])
    # The scrape target is vlmd's metrics listener.
    vlmd_conf = yaml.safe_load(open(mounts[("vlmd", "/etc/vlmd/vlmd.yaml")]))
    metrics_port = vlmd_conf["metrics"]["listen"].rsplit(":", 1)[1]
    check(vlmd_conf["metrics"]["listen"].startswith("0.0.0.0:"),
          "compose: vlmd's metrics listen on all interfaces of its container")
    prom_conf = yaml.safe_load(open(mounts[("prometheus", "/etc/prometheus/prometheus.yml")]))
    targets = [t for sc in prom_conf.get("scrape_configs", [])
               for st in sc.get("static_configs", []) for t in st.get("targets", [])]
    check("vlmd:%s" % metrics_port in targets,
          "compose: prometheus scrapes vlmd:%s (%s)" % (metrics_port, targets))
    # Grafana provisioning.
    prov = mounts[("grafana", "/etc/grafana/provisioning")]
    ds = yaml.safe_load(open(os.path.join(prov, "datasources", "prometheus.yaml")))
    d0 = get(ds, "datasources", 0, default={})
    check(d0.get("type") == "prometheus" and d0.get("url") == "http://prometheus:9090",
          "compose: grafana data source is the prometheus service")
    dp = yaml.safe_load(open(os.path.join(prov, "dashboards", "vlmd.yaml")))
    path = get(dp, "providers", 0, "options", "path")
    dash_mount = [c for (s, c) in mounts if s == "grafana" and c.endswith("vlmd.json")]
    check(bool(dash_mount) and os.path.dirname(dash_mount[0]) == path,
          "compose: grafana dashboard provider reads the mounted vlmd.json (%s)" % path)
    check(mounts.get(("grafana", dash_mount[0] if dash_mount else "")) ==
          os.path.join(SRC, "deploy", "grafana", "vlmd.json"),
          "compose: the mounted dashboard is deploy/grafana/vlmd.json")


# ---------------------------------------------------------------------------------------------
# Kubernetes.

def check_k8s():
    base = os.path.join(SRC, "deploy", "k8s")
    kust = yaml.safe_load(open(os.path.join(base, "kustomization.yaml")))
    files = sorted(f for f in os.listdir(base) if f.endswith(".yaml") and f != "kustomization.yaml")
    check(sorted(kust.get("resources", [])) == files,
          "k8s: kustomization lists every manifest (%s)" % files)
    objects = {}
    for f in files:
        for doc in yaml.safe_load_all(open(os.path.join(base, f))):
            if not doc:
                continue
            ok = all(doc.get(k) for k in ("apiVersion", "kind")) and get(doc, "metadata", "name")
            check(bool(ok), "k8s: %s: %s/%s has apiVersion, kind, metadata.name" % (
                f, doc.get("kind"), get(doc, "metadata", "name")))
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    dep = objects.get(("Deployment", "vlmd"), {})
    check(bool(dep), "k8s: Deployment vlmd")
    pod_labels = get(dep, "spec", "template", "metadata", "labels", default={})
    check(get(dep, "spec", "selector", "matchLabels") == pod_labels and bool(pod_labels),
          "k8s: Deployment selector matches its pod labels")
    c = get(dep, "spec", "template", "spec", "containers", 0, default={})
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check("grpc" in ports and "metrics" in ports, "k8s: container ports grpc and metrics")
    check(str(get(c, "resources", "limits", "nvidia.com/gpu", default="")) not in ("", "0"),
          "k8s: container limits nvidia.com/gpu")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check(get(c, probe, "grpc", "port") == ports.get("grpc"),
              "k8s: %s uses the gRPC health service on the gRPC port" % probe)
    check(get(dep, "spec", "template", "spec", "securityContext", "runAsNonRoot") is True,
          "k8s: pod runs as non-root")
    volumes = {v["name"]: v for v in get(dep, "spec", "template", "spec", "volumes", default=[])}
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    check(set(mounts) <= set(volumes), "k8s: every volumeMount has a volume")
    cm_name = get(volumes, "config", "configMap", "name")
    check(("ConfigMap", cm_name) in objects, "k8s: the config volume's ConfigMap exists")
    claims = [get(v, "persistentVolumeClaim", "claimName") for v in volumes.values()
              if "persistentVolumeClaim" in v]
    for claim in claims:
        check(("PersistentVolumeClaim", claim) in objects, "k8s: PVC %s exists" % claim)
    conf = yaml.safe_load(get(objects.get(("ConfigMap", cm_name), {}), "data", "vlmd.yaml",
                              default="{}"))
    state_mount = [n for n, p in mounts.items() if p == conf.get("state_dir")]
    check(bool(state_mount) and "persistentVolumeClaim" in volumes[state_mount[0]],
          "k8s: state_dir %s is on a PersistentVolumeClaim" % conf.get("state_dir"))
    devices = {0 if m.get("device") == "cuda" else int(m["device"].split(":")[1])
               for m in (conf.get("models") or {}).values()
               if isinstance(m, dict) and str(m.get("device", "")).startswith("cuda")}
    devices |= set(get(conf, "training", "gpus", default=[]) or [])
    wanted = int(get(c, "resources", "limits", "nvidia.com/gpu", default=0))
    check(devices and max(devices) < wanted,
          "k8s: the pod's %d GPU(s) cover the devices vlmd.yaml uses (%s)" % (wanted,
                                                                           sorted(devices)))
    check(conf.get("listen", "").endswith(":%s" % ports.get("grpc")) and get(
        conf, "metrics", "listen", default="").endswith(":%s" % ports.get("metrics")),
        "k8s: vlmd.yaml listens on the container's grpc and metrics ports")
    svc = objects.get(("Service", "vlmd"), {})
    check(get(svc, "spec", "selector") == pod_labels, "k8s: Service selects the pod labels")
    svc_ports = {p["name"]: p for p in get(svc, "spec", "ports", default=[])}
    check(all(p.get("targetPort") in ports for p in svc_ports.values()),
          "k8s: Service targets named container ports")
    sm = objects.get(("ServiceMonitor", "vlmd"), {})
    check(get(sm, "spec", "selector", "matchLabels", default={}).items() <=
          get(svc, "metadata", "labels", default={}).items() and bool(sm),
          "k8s: ServiceMonitor selects the Service")
    check(all(e.get("port") in svc_ports for e in get(sm, "spec", "endpoints", default=[])),
          "k8s: ServiceMonitor scrapes a named Service port")


# ---------------------------------------------------------------------------------------------
# Dashboard.

def check_dashboard():
    dash = json.loads(read("deploy/grafana/vlmd.json"))
    panels = []

    def walk(ps):
        for p in ps:
            panels.append(p)
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    ids = [p["id"] for p in panels]
    check(len(ids) == len(set(ids)), "dashboard: %d panels with unique ids" % len(ids))
    targets = [t for p in panels for t in p.get("targets", [])]
    check(all(t.get("expr") and t.get("datasource") for t in targets),
          "dashboard: %d targets, each with an expr and a datasource" % len(targets))
    documented = set(re.findall(r"`(vlmd_\w+)`", read("docs/serving.md")))
    used = set()
    for t in targets:
        used |= set(re.findall(r"\b(vlmd_\w+?)(?:_bucket|_count|_sum)?\b", t["expr"]))
    inference = {m for m in used if not m.startswith(JOB_METRICS)}
    missing = sorted(inference - documented)
    check(not missing, "dashboard: inference metrics are documented in docs/serving.md "
          "(missing: %s)" % missing)
    job_metrics = sorted(used - inference)
    exported = ""
    if os.path.exists(os.path.join(SRC, "server", "job_metrics.cc")):
        exported = read("server/job_metrics.cc")
        gone = [m for m in job_metrics if '"%s"' % m not in exported]
        check(not gone, "dashboard: job metrics are exported by server/job_metrics.cc "
              "(missing: %s)" % gone)


def main():
    for fn in (check_dockerfile, check_compose, check_k8s, check_dashboard):
        try:
            fn()
        except Exception as e:  # a parse error or a missing file is a failure, not a crash
            check(False, "%s raised %s: %s" % (fn.__name__, type(e).__name__, e))
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
