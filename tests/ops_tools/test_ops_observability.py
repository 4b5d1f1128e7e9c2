"""Dashboard and alert rules against Debian's real Prometheus: rules check and fire as designed, every panel
query returns data when the components' real metric definitions are scraped, every metric is documented."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

from paysync.net import free_port
from paysync.paths import REPO_ROOT

DASHBOARDS = REPO_ROOT / "dashboards"
METRIC = re.compile(r"\b(paysync_[a-z0-9_]+)")
POLLER_CLI = REPO_ROOT / "producers/pollers/cli.py"
# poller metrics left off the dashboard and alerts, and why; any other metric producers/pollers/cli.py declares is used
POLLER_METRICS_OFF_DASHBOARD = {
    "paysync_poller_runs_total": "failed polls show as the poller's freshness and PaysyncPollerStalled",
    "paysync_poller_lag_seconds": "the same age as the freshness panel's time() - last success, per account",
}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:  # Debian's package; CI installs it (`apt-get install -y -qq prometheus`)
        subprocess.run(["apt-get", "install", "-y", "-qq", "prometheus"], capture_output=True, check=False, timeout=600)
        found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed and could not be installed")
    return found


def _panel_queries() -> list[tuple[str, str]]:
    dash = json.loads((DASHBOARDS / "paysync.json").read_text(encoding="utf-8"))
    return [(p["title"], t["expr"]) for p in dash["panels"] if p["type"] != "row" for t in p["targets"]]


def _metric_base(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def _poller_declarations() -> list[tuple[type[MetricWrapperBase], str, str, list[str]]]:
    """(class, name, help, labels) of every `Counter(...)`/`Gauge(...)` in producers/pollers/cli.py, which declares
    the pollers' own metrics inline on the default registry (`_metrics`, `_delivered_gauges`)."""
    kinds: dict[str, type[MetricWrapperBase]] = {"Counter": Counter, "Gauge": Gauge, "Histogram": Histogram}
    found = []
    for node in ast.walk(ast.parse(POLLER_CLI.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in kinds:
            name, doc, *rest = (ast.literal_eval(arg) for arg in node.args)
            found.append((kinds[node.func.id], name, doc, list(rest[0]) if rest else []))
    return found


def _dashboard_and_alert_metrics() -> set[str]:
    used = {_metric_base(m) for _, q in _panel_queries() for m in METRIC.findall(q)}
    return used | {_metric_base(m) for m in METRIC.findall((DASHBOARDS / "alerts.yml").read_text(encoding="utf-8"))}


def test_promtool_checks_rules_config_and_alert_behaviour() -> None:
    promtool = _tool("promtool")
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"],
                 ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([promtool, *args], cwd=DASHBOARDS, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"promtool {' '.join(args)}: {done.stdout}{done.stderr}"


def test_dashboard_is_well_formed_and_every_metric_is_documented() -> None:
    dash = json.loads((DASHBOARDS / "paysync.json").read_text(encoding="utf-8"))
    provisioned = (DASHBOARDS / "grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert f"uid: {panel['datasource']['uid']}" in provisioned
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("ingest", "copies dropped", "rejections", "end-to-end", "lag", "budget", "retries", "dead letters", "payouts"):
        assert topic in titles
    documented = set(METRIC.findall((REPO_ROOT / "docs/operations.md").read_text(encoding="utf-8")))
    used = _dashboard_and_alert_metrics()
    assert used - documented == set(), "document every metric the dashboard and alerts use in docs/operations.md"


def test_every_poller_metric_is_on_the_dashboard_or_in_the_alerts() -> None:
    declared = {name for _, name, _, _ in _poller_declarations()}
    assert {"paysync_poller_copies_dropped_total", "paysync_poller_delivered_ids",
            "paysync_poller_delivered_max_ids"} <= declared  # the parse finds them
    assert set(POLLER_METRICS_OFF_DASHBOARD) <= declared, "an exception for a metric the pollers no longer declare"
    missing = declared - set(POLLER_METRICS_OFF_DASHBOARD) - _dashboard_and_alert_metrics()
    assert missing == set(), "a panel (or an alert) for every poller metric, or a reason in POLLER_METRICS_OFF_DASHBOARD"


def test_the_delivered_set_bound_is_the_one_each_poller_exports() -> None:
    """The panel's bound line and the alert's threshold are `paysync_poller_delivered_max_ids` (set from
    PAYSYNC_POLL_DELIVERED_MAX_IDS), not the default's 200000 written in: a poller configured otherwise is judged by
    its own bound (promtool's series in alerts_test.yml: a bound of 50000 fires, one of 500000 does not)."""
    rules = (DASHBOARDS / "alerts.yml").read_text(encoding="utf-8")
    rule = rules[rules.index("- alert: PaysyncPollerDeliveredSetAtBound"):].split("\n\n", 1)[0]
    expr = next(line.split("expr:", 1)[1].strip() for line in rule.splitlines() if "expr:" in line)
    assert expr == "paysync_poller_delivered_ids >= on (job, instance) paysync_poller_delivered_max_ids", rule
    dash = json.loads((DASHBOARDS / "paysync.json").read_text(encoding="utf-8"))
    (panel,) = [p for p in dash["panels"] if p["title"] == "Delivered-events set size vs bound"]
    assert [t["expr"] for t in panel["targets"]] == ["max by (instance) (paysync_poller_delivered_ids)",
                                                     "max by (instance) (paysync_poller_delivered_max_ids)"]
    assert "200000" not in json.dumps(panel) and "200000" not in rule


# A running Prometheus scraping the components' metric definitions -----------------------------------------


def _members(obj: Any) -> list[Any]:
    """The attributes of a metrics holder (a plain object, a dataclass with slots, or a named tuple)."""
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "__dict__"):
        return list(vars(obj).values())
    return [getattr(obj, name) for name in getattr(obj, "__slots__", ())]


def _component_registries() -> list[tuple[CollectorRegistry, list[MetricWrapperBase]]]:
    """The real components' metric objects (each on its own registry), plus the pollers' (defined inline there)."""
    sinks = pytest.importorskip("sinks.metrics")
    streams = pytest.importorskip("streams.metrics")
    webhook = pytest.importorskip("producers.webhook.metrics")
    faust_prom = pytest.importorskip("faust.sensors.prometheus")
    out = []
    sink = sinks.SinkMetrics(CollectorRegistry())
    out.append((sink.registry, _members(sink)))
    reg = CollectorRegistry()
    stream = streams.StreamMetrics(reg)
    faust = faust_prom.FaustMetrics.create(reg, "paysync_faust")
    out.append((reg, _members(stream) + _members(faust)))
    hook = webhook.WebhookMetrics.create()
    out.append((hook.registry, _members(hook)))
    stripe_api = pytest.importorskip("producers.stripe_api")
    reg = CollectorRegistry()  # exactly as producers/pollers/cli.py declares them (inline, on the default registry)
    pollers = [kind(name, doc, labels, registry=reg) for kind, name, doc, labels in _poller_declarations()]
    out.append((reg, [*pollers, stripe_api.api_counter(reg)]))
    return out


def _feed(metrics: list[MetricWrapperBase], tick: int) -> None:
    """Move every metric the way a busy pipeline would (budget: used 95 of max 100)."""
    for metric in metrics:
        if not isinstance(metric, MetricWrapperBase):
            continue
        names = list(metric._labelnames)
        variants = ([["used"], ["max"]] if names == ["kind"] and "budget" in metric._name
                    else [[{"poller": "events"}.get(n, "x") for n in names]])  # the events poller drops copies
        for values in variants:
            child = metric.labels(*values) if names else metric
            if isinstance(metric, Counter):
                child.inc(1 + tick % 3)
            elif isinstance(metric, Histogram):
                child.observe(0.05 * (1 + tick % 7))
            elif isinstance(metric, Gauge):
                child.set({"used": 95, "max": 100}.get(values[0] if values else "", time.time() if "timestamp" in metric._name else 10 + tick))


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus scraping the components' metrics every second, with paysync's rules loaded."""
    binary = _tool("prometheus")
    stop = threading.Event()
    targets = []
    fed: list[MetricWrapperBase] = []
    servers = []
    for registry, metrics in _component_registries():
        port = free_port()
        servers.append(start_http_server(port, addr="127.0.0.1", registry=registry))
        targets.append(f"127.0.0.1:{port}")
        fed.extend(metrics)

    def feeder() -> None:
        tick = 0
        while not stop.is_set():
            _feed(fed, tick)
            tick += 1
            stop.wait(0.25)

    thread = threading.Thread(target=feeder, daemon=True)
    thread.start()
    shutil.copy(DASHBOARDS / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [alerts.yml]\n"
        "scrape_configs:\n  - job_name: paysync-test\n    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n", encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=(tmp_path / "log").open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "log").read_text()
            assert time.monotonic() < deadline, "Prometheus never became ready"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stop.set()
        thread.join(5)
        for server in servers:
            server[0].shutdown()
            server[0].server_close()


def _query(base: str, expr: str) -> dict[str, Any]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_every_panel_query_returns_data(prometheus: str) -> None:
    queries = [(title, expr.replace("$__rate_interval", "10s")) for title, expr in _panel_queries()]
    for _, expr in queries:
        assert _query(prometheus, expr)["status"] == "success", expr
    empty = queries
    deadline = time.monotonic() + 60
    while empty and time.monotonic() < deadline:
        empty = [(t, e) for t, e in empty if not _query(prometheus, e)["data"]["result"]]
        if empty:
            time.sleep(1)
    assert empty == [], "panel queries with no data"
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as r:
        groups = json.loads(r.read())["data"]["groups"]
    rules = [rule for g in groups for rule in g["rules"]]
    declared = (DASHBOARDS / "alerts.yml").read_text(encoding="utf-8").count("- alert: ")
    assert len(rules) == declared >= 11 and all(rule["health"] == "ok" for rule in rules), rules
    budget = _query(prometheus, 'max(paysync_salesforce_api_budget{kind="used"}) / max(paysync_salesforce_api_budget{kind="max"})')
    assert float(budget["data"]["result"][0]["value"][1]) == pytest.approx(0.95)
    deadline = time.monotonic() + 30
    firing: set[str] = set()
    while "PaysyncSalesforceApiBudgetNearLimit" not in firing and time.monotonic() < deadline:
        firing = {a["metric"]["alertname"] for a in _query(prometheus, "ALERTS")["data"]["result"]}
        time.sleep(0.5)
    assert "PaysyncSalesforceApiBudgetNearLimit" in firing, "pending or firing once the budget is at 95 %"
