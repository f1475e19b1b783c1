"""deploy/: the Prometheus scrape example and the Grafana dashboard, run by a real Prometheus (Debian's package)
scraping the live server's /metrics with the bearer token, every dashboard query evaluated by it."""

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from sendconn.observability import metrics
from sendconn.transport import tracking
from sendconn.transport.models import TrackingEventId, TrackingSource
from sendconn.transport.queueing import queue_message
from sendconn.transport.tasks import sweep
from tests.peers import free_port

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((REPO / "deploy/grafana/sendconn.json").read_text())
SCRAPE_CONFIG = (REPO / "deploy/prometheus/prometheus.yml").read_text()
TOKEN = "prometheus-scrape-token-7d2e"


def dashboard_queries():
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]


def metric_names(expression):
    return set(re.findall(r"\bsendconn_[a-z_]+", expression))


def test_dashboard_imports_with_a_prometheus_data_source_and_a_connector_filter():
    assert [item["name"] for item in DASHBOARD["__inputs"]] == ["DS_PROMETHEUS"]
    assert all(panel["datasource"]["uid"] == "${DS_PROMETHEUS}" for panel in DASHBOARD["panels"])
    assert DASHBOARD["templating"]["list"][0]["name"] == "connector"
    assert len({panel["id"] for panel in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])


def test_dashboard_uses_only_documented_metrics():
    readme = (REPO / "README.md").read_text()
    for expression in dashboard_queries():
        for name in metric_names(expression):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert f"`{base}`" in readme, f"{name} (in {expression!r}) is not in README's metric table"


def prometheus_get(port, path, **params):
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def prometheus(live_server, tmp_path):
    """Prometheus with the example's scrape job pointed at the live server, scraping every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus package is not installed (.ci/run installs it)")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    target = live_server.url.removeprefix("http://")
    config = (
        SCRAPE_CONFIG.replace("/etc/prometheus/sendconn-metrics-token", str(token_file))
        .replace("sendconn.contoso.com:8000", target)
        .replace("scrape_interval: 30s", "scrape_interval: 1s")
    )
    assert target in config and str(token_file) in config
    (tmp_path / "prometheus.yml").write_text(config)
    check = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_prometheus_scrapes_with_the_token_and_answers_every_dashboard_query(settings, make_connector, prometheus):
    settings.SENDCONN_METRICS_TOKEN = TOKEN
    settings.SENDCONN_METRICS_NETWORKS = []  # only the token lets Prometheus in
    make_connector("To internet", ["*"])
    message = queue_message("julia@contoso.test", ["kim@implicit.test"], b"Subject: Hi\r\n\r\nHello\r\n")
    tracking.record(
        [  # each outcome once, committed: the hooks count them
            tracking.event(
                event_id,
                TrackingSource.SMTP,
                message,
                "kim@implicit.test",
                recipient_status=status,
                connector_name="To internet",
            )
            for event_id, status in (
                (TrackingEventId.SEND, "250 2.6.0 Queued"),
                (TrackingEventId.DEFER, "451 4.4.0 x"),
                (TrackingEventId.FAIL, "550 5.1.1 User unknown"),
            )
        ]
    )
    metrics.smtpd_message_accepted()
    metrics.smtpd_reply("550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain")
    metrics.verification_finished("Succeeded")
    sweep.apply()

    deadline = time.monotonic() + 60
    while True:
        try:
            up = prometheus_get(prometheus, "/api/v1/query", query='up{job="sendconn"}')["data"]["result"]
        except OSError:
            up = []
        if up and up[0]["value"][1] == "1":
            break
        assert time.monotonic() < deadline, f"Prometheus never scraped /metrics: {up}"
        time.sleep(0.5)

    known = set(prometheus_get(prometheus, "/api/v1/label/__name__/values")["data"])
    for expression in dashboard_queries():
        assert metric_names(expression) <= known, expression
        answer = prometheus_get(prometheus, "/api/v1/query", query=expression.replace("$connector", ".*"))
        assert answer["status"] == "success", (expression, answer)
    waiting = prometheus_get(prometheus, "/api/v1/query", query='sendconn_queue_messages{connector="To internet"}')
    assert [sample["value"][1] for sample in waiting["data"]["result"]] == ["1"]
