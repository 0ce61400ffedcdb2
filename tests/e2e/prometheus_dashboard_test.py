#!/usr/bin/env python3
"""End-to-end: the Grafana dashboard's queries against the real thing.

Starts `vlmd serve` (the tiny model, loopback, metrics on) and Debian's `prometheus` scraping it
every second, drives inference through vlmctl (answers, a stream, concurrent requests, errors),
a short LoRA job on the named data set latex-ocr-print (rendered by make_latex_data.py), a merge
and an evaluation, then evaluates every PromQL expression of deploy/grafana/vlmd.json through
Prometheus' HTTP API and fails unless each one returns data (a series with a finite value):
  - time-series panels as Grafana draws them: /api/v1/query_range over the test's window;
  - stat panels: /api/v1/query at the end;
  - the template variables' label_values(metric, label): a range query of the metric, which
    must yield at least one label value.
It also checks that the errors it caused show up by code (NOT_FOUND, INVALID_ARGUMENT).
Dashboard variables are substituted as Grafana would ($model, $job -> ".*",
$__rate_interval -> 4 scrape intervals).

    prometheus_dashboard_test.py --vlmd BIN --vlmctl BIN [--source-dir DIR] [--keep]

Python 3 standard library only. Exit code 0 when every expression returned data.
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SCRAPE_S = 1
RATE_INTERVAL = "%ds" % (4 * SCRAPE_S)
QUERY = "Using LaTeX to perform OCR on the image."


def log(msg):
    print("[prometheus-e2e %6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, timeout=300, env=None, check=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    if check and r.returncode != 0:
        raise Failure("%s exited %d:\n%s%s" % (" ".join(argv[:3]), r.returncode, r.stdout,
                                               r.stderr))
    return r


def http_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except (OSError, ValueError, urllib.error.URLError) as e:
            last = e
        time.sleep(0.5)
    raise Failure("timed out after %ds waiting for %s (%s)" % (timeout, what, last))


class Processes:
    """Background processes, stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, log_path, env=None):
        fh = open(log_path, "w")
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT,
                             env=dict(os.environ, **(env or {})))
        self.procs.append((name, p, fh, log_path))
        return p

    def check_alive(self):
        for name, p, _, path in self.procs:
            if p.poll() is not None:
                raise Failure("%s exited early (%d); its log:\n%s" % (name, p.returncode,
                                                                        tail(path)))

    def stop_all(self):
        codes = {}
        for name, p, fh, _ in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            codes[name] = p.returncode
            fh.close()
        self.procs = []
        return codes


def tail(path, n=40):
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# The dashboard.

def dashboard_queries(dashboard):
    """[(panel title, panel type, expr)] for every target of every panel (rows included), and
    [(variable name, query)] for the query variables."""
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), p.get("type", "?"), t["expr"]))

    walk(dashboard.get("panels", []))
    variables = []
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            variables.append((v["name"], q.get("query") if isinstance(q, dict) else q))
    return out, variables


def substitute(expr):
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", "%ds" % SCRAPE_S)
    return re.sub(r"\$\{?(model|job)\}?", ".*", expr)


def finite_values(result, matrix):
    values = []
    for series in result:
        points = series.get("values", []) if matrix else [series.get("value")]
        for p in points:
            if p and not math.isnan(float(p[1])) and not math.isinf(float(p[1])):
                values.append(float(p[1]))
    return values


class Prometheus:
    def __init__(self, base):
        self.base = base

    def api(self, path, **params):
        url = "%s/api/v1/%s?%s" % (self.base, path, urllib.parse.urlencode(params))
        try:
            body = http_json(url, timeout=30)
        except urllib.error.HTTPError as e:
            body = json.loads(e.read().decode() or "{}")
        if body.get("status") != "success":
            raise Failure("%s: %s: %s" % (path, body.get("errorType"), body.get("error")))
        return body["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        return self.api("query", **params)

    def query_range(self, expr, start, end):
        return self.api("query_range", query=expr, start="%.3f" % start, end="%.3f" % end,
                        step="%ds" % SCRAPE_S)


def label_values_query(query):
    """label_values(metric, label) -> (metric, label); None for another form."""
    m = re.fullmatch(r"\s*label_values\(\s*([^,]+?)\s*,\s*(\w+)\s*\)\s*", query or "")
    return (m.group(1), m.group(2)) if m else None


def check_dashboard(prom, dashboard, start, end):
    """Evaluates every expression; returns (passed, failed) lists of messages."""
    passed, failed = [], []
    queries, variables = dashboard_queries(dashboard)
    for name, query in variables:
        lv = label_values_query(query)
        if lv is None:
            failed.append("variable $%s: unsupported query %r" % (name, query))
            continue
        expr = "count by (%s) (%s)" % (lv[1], lv[0])
        data = prom.query_range(expr, start, end)
        if data["result"]:
            passed.append("variable $%s: %s -> %s" % (
                name, query, sorted({s["metric"].get(lv[1], "") for s in data["result"]})))
        else:
            failed.append("variable $%s: %s returned no values" % (name, query))
    for title, kind, raw in queries:
        expr = substitute(raw)
        label = "%s: %s" % (title, expr)
        try:
            if kind == "timeseries":
                data = prom.query_range(expr, start, end)
                values = finite_values(data["result"], matrix=True)
            else:
                data = prom.query(expr, at=end)
                values = finite_values(data["result"], matrix=False)
        except Failure as e:
            failed.append("%s -> error %s" % (label, e))
            continue
        if values:
            passed.append("%s -> %d series, %d points, last %.4g" % (
                label, len(data["result"]), len(values), values[-1]))
        else:
            failed.append("%s -> %s" % (label, "no series" if not data["result"]
                                        else "only NaN/Inf values"))
    return passed, failed


# ---------------------------------------------------------------------------------------------
# Traffic.

def vlmctl(args, addr, timeout=120, check=True):
    """Runs vlmctl against `addr` with a deadline."""
    return run([ARGS.vlmctl, "--addr", addr, "--timeout", str(timeout)] + args, timeout + 10,
               check=check)


def drive_inference(addr, image):
    """Answers, a stream, concurrent requests (batching), and errors (NOT_FOUND,
    INVALID_ARGUMENT) so that every inference panel has data."""
    for i in range(3):
        vlmctl(["infer", "--image", image, "--max-new-tokens", "12", "--temperature", "0",
                QUERY], addr)
    vlmctl(["infer", "--stream", "--max-new-tokens", "8", "Write a formula."], addr)
    batch = [subprocess.Popen([ARGS.vlmctl, "--addr", addr, "infer", "--image", image,
                               "--max-new-tokens", "24", "--ignore-eos", "--seed", str(i),
                               "--temperature", "1", QUERY],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(4)]
    for p in batch:
        _, err = p.communicate(timeout=180)
        if p.returncode != 0:
            raise Failure("concurrent infer failed: %s" % err.decode(errors="replace"))
    r = vlmctl(["infer", "--model", "no-such-model", "hello"], addr, check=False)
    if r.returncode != 4:
        raise Failure("an unknown model should be NOT_FOUND (exit 4), got %d: %s" % (
            r.returncode, r.stderr))
    r = vlmctl(["infer", "--temperature", "-1", "hello"], addr, check=False)
    if r.returncode != 3:
        raise Failure("a negative temperature should be INVALID_ARGUMENT (exit 3), got %d: %s"
                      % (r.returncode, r.stderr))
    vlmctl(["models"], addr)


def drive_training(addr, model_dir, tmp, data_root):
    """A short LoRA job on the named data set (latex-ocr-print under training.data_root)
    through vlmctl sft, followed until it ends; then a merge and an evaluation of it."""
    r = vlmctl(["sft", "--name", "prom-e2e", "--model", model_dir, "--dataset", "latex-ocr-print",
                "--max_steps", "8", "--eval_steps", "4", "--save_steps", "4",
                "--logging_steps", "1", "--gradient_accumulation_steps", "1",
                "--learning_rate", "1e-3", "--max_pixels", "12544", "--dataset_test_ratio",
                "0.34", "--gpus", "0", "--json"], addr)
    job = json.loads(r.stdout)
    job_id = job.get("id") or job.get("job", {}).get("id")
    log("job %s submitted" % job_id)
    vlmctl(["status", job_id, "--watch"], addr, timeout=600)
    final = json.loads(vlmctl(["status", job_id, "--json"], addr).stdout)
    state = final.get("state") or final.get("job", {}).get("state")
    if not str(state).endswith("SUCCEEDED"):
        raise Failure("job %s ended %s: %s" % (job_id, state, final))
    vlmctl(["merge", "--job", job_id, "--out", os.path.join(tmp, "merged")], addr, timeout=300)
    # The job's checkpoint on the set's validation file. (`eval --job` alone rebuilds the job's
    # own split, which for a named data set needs the data root, and the evaluator is not
    # given it yet: FAILED_PRECONDITION "needs a data root".)
    vlmctl(["eval", "--job", job_id, "--dataset",
            os.path.join(data_root, "latex-ocr-print", "validation.jsonl"),
            "--max-new-tokens", "8"], addr, timeout=300)


def main(argv):
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--vlmd", required=True)
    p.add_argument("--vlmctl", required=True)
    p.add_argument("--source-dir", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    p.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    ARGS = p.parse_args(argv)
    src = os.path.abspath(ARGS.source_dir)
    if not os.access(ARGS.prometheus, os.X_OK):
        print("prometheus not found (%s): scripts/setup.sh installs Debian's prometheus"
              % ARGS.prometheus, file=sys.stderr)
        return 1
    with open(os.path.join(src, "deploy", "grafana", "vlmd.json")) as fh:
        dashboard = json.load(fh)
    tmp = tempfile.mkdtemp(prefix="vlmd-prom-e2e-")
    procs = Processes()
    ok = False
    try:
        ok = scenario(src, tmp, procs, dashboard)
    except Failure as e:
        print("FAILED: %s" % e, file=sys.stderr)
    finally:
        codes = procs.stop_all()
        log("stopped: %s" % codes)
        if codes.get("vlmd") not in (None, 0):
            print("FAILED: vlmd exited %s on SIGTERM" % codes.get("vlmd"), file=sys.stderr)
            ok = False
        if ARGS.keep or not ok:
            log("logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def scenario(src, tmp, procs, dashboard):
    model = os.path.join(tmp, "model")
    run([ARGS.vlmd, "init-model", "--preset", "tiny", "--seed", "7", "--out", model])
    log("tiny model written")
    ready = os.path.join(tmp, "ready.json")
    data_root = os.path.join(tmp, "data")
    procs.start("vlmd", [ARGS.vlmd, "serve", "--model", "tiny=" + model,
                         "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                         "--ready-file", ready, "--allowed-root", tmp,
                         "--state-dir", os.path.join(tmp, "state"),
                         "--set", "training.data_root=" + data_root],
                os.path.join(tmp, "vlmd.log"))
    info = wait_for("vlmd's ready file", lambda: procs.check_alive() or (
        os.path.exists(ready) and json.load(open(ready))), 180)
    addr, metrics = info["grpc_address"], info["metrics_address"]
    log("vlmd serving on %s, metrics on %s" % (addr, metrics))

    port = free_port()
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as fh:
        fh.write("global:\n  scrape_interval: %ds\n  evaluation_interval: %ds\n"
                 "scrape_configs:\n  - job_name: vlmd\n    static_configs:\n"
                 "      - targets: ['%s']\n" % (SCRAPE_S, SCRAPE_S, metrics))
    procs.start("prometheus", [ARGS.prometheus, "--config.file=" + config,
                               "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                               "--web.listen-address=127.0.0.1:%d" % port,
                               "--log.level=warn"], os.path.join(tmp, "prometheus.log"))
    prom = Prometheus("http://127.0.0.1:%d" % port)
    wait_for("prometheus ready", lambda: procs.check_alive() or urllib.request.urlopen(
        prom.base + "/-/ready", timeout=2).status == 200, 60)
    wait_for("the vlmd target up", lambda: any(
        s["value"][1] == "1" for s in prom.query('up{job="vlmd"}')["result"]), 60)
    start = time.time()
    log("prometheus on %s scrapes vlmd every %ds" % (prom.base, SCRAPE_S))

    image = os.path.join(src, "tests", "fixtures", "images", "formula_176x53_p.png")
    drive_inference(addr, image)
    log("inference driven")
    run([sys.executable, os.path.join(src, "scripts", "make_latex_data.py"), "--out",
         data_root, "--count", "6", "--max-tokens", "8", "--dpi", "100", "--seed", "1"])
    drive_training(addr, model, tmp, data_root)
    log("training job, merge and evaluation done")
    time.sleep(4 * SCRAPE_S + 1)  # the last samples scraped and a full rate window after them
    end = time.time()
    passed, failed = check_dashboard(prom, dashboard, start - 2, end)
    # The errors the test caused are there, by code, as the errors panel groups them.
    codes = {s["metric"].get("code") for s in prom.query_range(
        'sum by (code) (vlmd_requests_total{code!="OK"})', start - 2, end)["result"]}
    for code in ("NOT_FOUND", "INVALID_ARGUMENT"):
        (passed if code in codes else failed).append("errors by code include %s (%s)" % (
            code, sorted(codes)))
    for m in passed:
        print("PASS " + m)
    for m in failed:
        print("FAIL " + m)
    print("%d passed, %d failed" % (len(passed), len(failed)))
    return not failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
