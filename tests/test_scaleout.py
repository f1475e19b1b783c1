"""Scale-out smoke test: the docker-compose topology, run from processes on loopback.

Web (gunicorn) and a Celery worker run as separate processes, each with its own var dir and server identity,
sharing only a fresh PostgreSQL database and a Redis db. An admin signs in and creates a connector through the
web UI; the worker registered itself as a transport server at start-up, consumes its own server queue, and a
diagnostic task sent to that queue reads the connector back from the database.
"""

import os
import re
import secrets
import sys
import time
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest

from tests.peers import free_port
from tests.peers.stack import Process, empty_redis_db, fresh_database, manage, query

pytest.importorskip("psycopg")
redis = pytest.importorskip("redis")
requests = pytest.importorskip("requests")

pytestmark = pytest.mark.services

REDIS_URL = "redis://127.0.0.1:6379/5"  # this test's own Redis db: flushed before and after, nothing else is
WEB_SERVER, WORKER_SERVER = "WEB01", "EX02"
WORKER_FQDN, WORKER_SITE = "ex02.contoso.test", "Scale-Out-Site"


@pytest.fixture(scope="module")
def database_url():
    with fresh_database("sendconn_scaleout") as url:
        yield url


@pytest.fixture(scope="module")
def broker_url():
    with empty_redis_db(REDIS_URL):
        yield REDIS_URL


@pytest.fixture(scope="module")
def base_env(database_url, broker_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDCONN_", "CELERY_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="sendconn.settings",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        SECRET_KEY=secrets.token_urlsafe(40),
        DEBUG="false",
        LOG_LEVEL="INFO",
    )
    return env


def machine_env(base_env, var_dir, server_name, fqdn, site):
    """The environment of one machine of the topology: shared database, broker and key; its own identity."""
    return {
        **base_env,
        "SENDCONN_VAR_DIR": str(var_dir),
        "SENDCONN_SERVER_NAME": server_name,
        "SENDCONN_SERVER_FQDN": fqdn,
        "SENDCONN_SITE": site,
    }


def assert_running(process):
    assert process.running, f"{process.name} exited with {process.popen.returncode}\n{process.tail()}"


def wait_for(what, check, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert_running(process)
        result = check()
        if result:
            return result
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{process.tail()}")


@pytest.fixture(scope="module")
def web(base_env, tmp_path_factory):
    """Migrated database, bootstrap's admin password, and gunicorn serving the console on a free port."""
    var_dir = tmp_path_factory.mktemp("web-machine")
    env = machine_env(base_env, var_dir, WEB_SERVER, "web01.contoso.test", "Default-First-Site-Name")
    manage(env, "migrate", "--noinput")
    password = re.search(r"Created user 'admin' .* with password: (\S+)", manage(env, "bootstrap")).group(1)
    port = free_port()
    process = Process(
        "web",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "sendconn.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            "-",
            "--no-control-socket",
        ],
        env,
        var_dir,
    )
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{url}/login/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for("the web server", answers, process)
        yield {"url": url, "password": password, "process": process}
    finally:
        process.stop()


@pytest.fixture(scope="module")
def worker(base_env, web, tmp_path_factory):
    """A Celery worker on another "machine": no -Q, so its server queue comes from start-up registration."""
    var_dir = tmp_path_factory.mktemp("worker-machine")
    env = machine_env(base_env, var_dir, WORKER_SERVER, WORKER_FQDN, WORKER_SITE)
    process = Process(
        "worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sendconn",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--hostname",
            f"scaleout-{secrets.token_hex(3)}@%h",
            "--loglevel",
            "INFO",
        ],
        env,
        var_dir,
    )
    try:
        wait_for("the worker to consume its queues", lambda: "ready." in process.output(), process)
        yield process
    finally:
        process.stop()


def transport_servers(database_url):
    return query(database_url, "SELECT name, fqdn, site FROM connectors_transportserver ORDER BY name")


class Forms(HTMLParser):
    """The forms of a page as a browser would submit them: field values, checked boxes, submit buttons."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.forms, self._select, self._textarea = [], None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "fields": [], "buttons": {}})
        elif not self.forms:
            return
        fields = self.forms[-1]["fields"]
        name = attrs.get("name")
        if tag == "input" and name and "disabled" not in attrs:
            kind = attrs.get("type", "text").lower()
            if kind == "submit":
                self.forms[-1]["buttons"][name] = attrs.get("value", "")
            elif kind not in ("checkbox", "radio") or "checked" in attrs:
                fields.append((name, attrs.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif tag == "button" and name and attrs.get("type", "submit") == "submit":
            self.forms[-1]["buttons"][name] = attrs.get("value", "")
        elif tag == "select" and name:
            self._select = {"name": name, "first": None, "chosen": None}
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            self._select["first"] = value if self._select["first"] is None else self._select["first"]
            if "selected" in attrs:
                self._select["chosen"] = value
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None:
            chosen = self._select["chosen"] if self._select["chosen"] is not None else self._select["first"]
            if chosen is not None:
                self.forms[-1]["fields"].append((self._select["name"], chosen))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.forms[-1]["fields"].append(tuple(self._textarea))
            self._textarea = None


class Browser:
    """A requests session that submits the page's own forms, CSRF token and hidden inputs included."""

    def __init__(self, base_url):
        self.base_url, self.session, self.page = base_url, requests.Session(), None

    def get(self, path):
        return self._load(self.session.get(urljoin(self.base_url, path), timeout=30))

    def submit(self, button=None, having=None, **values):
        """Post the form that has the field ``having`` (else the page's last form), ``values`` replacing fields."""
        forms = Forms(self.page.text).forms
        form = next((form for form in forms if having in dict(form["fields"])), forms[-1])
        fields = [(name, value) for name, value in form["fields"] if name not in values]
        for name, value in values.items():
            fields.extend((name, item) for item in (value if isinstance(value, list) else [value]))
        if button is not None:
            assert button in form["buttons"], f"no button {button!r} on {self.page.url}: {form['buttons']}"
            fields.append((button, form["buttons"][button]))
        response = self.session.post(
            urljoin(self.page.url, form["action"]), data=fields, timeout=30, headers={"Referer": self.page.url}
        )
        return self._load(response)

    def _load(self, response):
        assert response.status_code == 200, f"{response.request.method} {response.url}: {response.status_code}"
        self.page = response
        return response


def test_connector_created_in_the_web_is_visible_to_a_worker_on_its_server_queue(web, worker, base_env):
    from celery import Celery

    # The worker registered its machine as a transport server at start-up, with its own identity.
    assert (WORKER_SERVER, WORKER_FQDN, WORKER_SITE) in transport_servers(base_env["DATABASE_URL"])

    # The admin created by bootstrap signs in through the real login page.
    browser = Browser(web["url"])
    browser.get("/login/")
    browser.submit(username="admin", password=web["password"])
    assert "/login/" not in browser.page.url, "the sign-in was refused"

    create_connector_in_the_web(browser)

    client = Celery("scaleout-test", broker=base_env["CELERY_BROKER_URL"], backend=base_env["CELERY_BROKER_URL"])
    try:
        # A task for another server's queue waits there: this worker only takes its own queue (and celery).
        client.send_task("sendconn.connectors.tasks.ping_connectors", queue="server.ex99")
        reply = client.send_task(
            "sendconn.connectors.tasks.ping_connectors", kwargs={"identity": "To internet"}, queue="server.ex02"
        ).get(timeout=60)
        assert redis.Redis.from_url(base_env["CELERY_BROKER_URL"]).llen("server.ex99") == 1
    finally:
        client.close()
    assert_running(worker)

    assert reply["server"] == WORKER_SERVER
    assert reply["connectors"] == ["To internet"]
    properties = reply["properties"]
    assert properties["Identity"] == "To internet"
    assert properties["AddressSpaces"] == ["SMTP:*;1"]
    assert properties["DNSRoutingEnabled"] is True
    assert properties["SourceTransportServers"] == [WORKER_SERVER]
    assert properties["Enabled"] is True


def create_connector_in_the_web(browser):
    """The seed's Internet connector through the New send connector wizard, with the worker as source server."""
    browser.get("/connectors/new/")
    wizard = lambda button=None, **fields: browser.submit(button, having="wizard_instance", **fields)  # noqa: E731
    wizard(**{"name-name": "To internet", "name-usage": "Internet"})
    wizard(**{"network-routing": "mx"})
    wizard(
        "save_address_space",
        **{"address_space-space_type": "SMTP", "address_space-space_domain": "*", "address_space-space_cost": "1"},
    )
    wizard()
    wizard("add_source_servers", **{"source_server-selected_servers": [WORKER_SERVER]})
    wizard()  # Finish
    assert "/connectors/" in browser.page.url and "To internet" in browser.page.text, browser.page.url
