"""Settings come from the environment: each case runs sendconn.settings in a fresh interpreter with its own env."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OWN_VARIABLES = (
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_URL",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "LOG_LEVEL",
    "SESSION_COOKIE_SECURE",
    "DJANGO_SETTINGS_MODULE",
)


def run_python(code, tmp_path, **env):
    """Run ``code`` with sendconn.settings and only the given variables set (plus a scratch var dir)."""
    clean = {
        k: v for k, v in os.environ.items() if k not in OWN_VARIABLES and not k.startswith(("SENDCONN_", "CELERY_"))
    }
    clean.update(DJANGO_SETTINGS_MODULE="sendconn.settings", SENDCONN_VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60)


def read_settings(tmp_path, names, **env):
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = run_python(code, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def read_celery_conf(tmp_path, names, **env):
    code = (
        "import json; from sendconn.celery import app; "
        f"print(json.dumps({{n: app.conf[n] for n in {list(names)!r}}}, default=str))"
    )
    result = run_python(code, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_postgres_database_url_is_parsed(tmp_path):
    db = read_settings(
        tmp_path, ["DATABASES"], SECRET_KEY="k", DATABASE_URL="postgres://sendconn:s3cret@db.internal:5433/mail"
    )["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "mail",
        "sendconn",
        "s3cret",
        "db.internal",
        5433,
    )


def test_embedded_default_is_sqlite_and_a_filesystem_broker_under_var(tmp_path):
    values = read_settings(tmp_path, ["DATABASES", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"], SECRET_KEY="k")
    var = tmp_path / "var"
    assert values["DATABASES"]["default"]["ENGINE"] == "sendconn.sqlite"
    assert values["DATABASES"]["default"]["NAME"] == str(var / "sendconn.sqlite3")
    assert values["CELERY_BROKER_URL"] == "filesystem://localhost//"  # kombu warns about a URL without a host
    assert values["CELERY_RESULT_BACKEND"] == f"file://{var / 'results'}"
    # kombu does not create its folders: settings do, so any process can be the first to start.
    for folder in ("broker/queue", "broker/processed", "broker/control", "results"):
        assert (var / folder).is_dir(), folder


def test_refuses_to_start_with_debug_off_and_the_default_secret_key(tmp_path):
    result = run_python("import django; django.setup()", tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr


def test_the_key_make_run_generated_is_used_when_secret_key_is_unset(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text("generated-by-make-run\n")
    assert read_settings(tmp_path, ["SECRET_KEY"])["SECRET_KEY"] == "generated-by-make-run"
    assert read_settings(tmp_path, ["SECRET_KEY"], SECRET_KEY="given")["SECRET_KEY"] == "given"


def test_default_secret_key_is_accepted_with_debug_on(tmp_path):
    assert read_settings(tmp_path, ["DEBUG"], DEBUG="true")["DEBUG"] is True


def test_a_bad_boolean_is_refused_with_the_variable_named(tmp_path):
    result = run_python("import django; django.setup()", tmp_path, SECRET_KEY="k", DEBUG="maybe")

    assert result.returncode != 0
    assert "DEBUG must be true or false, not 'maybe'" in result.stderr


def test_lists_and_server_identity_come_from_the_environment(tmp_path):
    values = read_settings(
        tmp_path,
        [
            "ALLOWED_HOSTS",
            "CSRF_TRUSTED_ORIGINS",
            "SENDCONN_SERVER_NAME",
            "SENDCONN_SERVER_FQDN",
            "SENDCONN_SITE",
            "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE",
        ],
        SECRET_KEY="k",
        ALLOWED_HOSTS="mail.contoso.com, 10.0.0.5",
        CSRF_TRUSTED_ORIGINS="https://mail.contoso.com",
        SENDCONN_SERVER_NAME="EX02",
        SENDCONN_SERVER_FQDN="ex02.contoso.com",
        SENDCONN_SITE="Paris",
        SESSION_COOKIE_SECURE="true",
    )
    assert values == {
        "ALLOWED_HOSTS": ["mail.contoso.com", "10.0.0.5"],
        "CSRF_TRUSTED_ORIGINS": ["https://mail.contoso.com"],
        "SENDCONN_SERVER_NAME": "EX02",
        "SENDCONN_SERVER_FQDN": "ex02.contoso.com",
        "SENDCONN_SITE": "Paris",
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_trusted_proxies_are_networks_and_a_bad_one_is_named(tmp_path):
    assert read_settings(tmp_path, ["SENDCONN_TRUSTED_PROXIES"], SECRET_KEY="k") == {"SENDCONN_TRUSTED_PROXIES": []}
    values = read_settings(
        tmp_path, ["SENDCONN_TRUSTED_PROXIES"], SECRET_KEY="k", SENDCONN_TRUSTED_PROXIES="10.0.0.5, 10.1.0.0/16,::1"
    )
    assert values == {"SENDCONN_TRUSTED_PROXIES": ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]}
    result = run_python("import django; django.setup()", tmp_path, SECRET_KEY="k", SENDCONN_TRUSTED_PROXIES="proxy")
    assert result.returncode != 0
    assert "SENDCONN_TRUSTED_PROXIES: 'proxy' isn't an IP address or network." in result.stderr


def test_server_identity_defaults_to_this_host_in_the_default_site(tmp_path):
    import socket

    values = read_settings(tmp_path, ["SENDCONN_SERVER_NAME", "SENDCONN_SITE"], SECRET_KEY="k")
    assert values == {
        "SENDCONN_SERVER_NAME": socket.gethostname().split(".")[0],
        "SENDCONN_SITE": "Default-First-Site-Name",
    }


def test_celery_settings_for_never_losing_a_wake_up():
    from sendconn.celery import app

    # A task is acknowledged only once done, and redelivered if its worker process dies.
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_redis_broker_has_a_visibility_timeout_above_task_limits(tmp_path, scheme):
    url = f"{scheme}://127.0.0.1:6379/5"
    conf = read_celery_conf(
        tmp_path,
        ["broker_url", "broker_transport_options", "result_backend", "task_time_limit"],
        SECRET_KEY="k",
        CELERY_BROKER_URL=url,
    )

    assert conf["broker_url"] == url
    # Redis redelivers an unacknowledged task after the visibility timeout: it must outlast any run or countdown.
    assert conf["broker_transport_options"]["visibility_timeout"] >= 3600
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]
    assert conf["result_backend"] == url  # diagnostics (ping_connectors) answer through the same Redis


def test_delivery_timers_default_to_exchanges_and_come_from_the_environment(tmp_path):
    names = [
        "SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT",
        "SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL",
        "SENDCONN_OUTBOUND_CONNECTION_FAILURE_RETRY_INTERVAL",
        "SENDCONN_MESSAGE_EXPIRATION_TIMEOUT",
        "SENDCONN_DELAY_NOTIFICATION_TIMEOUT",
        "SENDCONN_CLAIM_TIMEOUT",
        "CELERY_TASK_TIME_LIMIT",
    ]
    defaults = read_settings(tmp_path, names, SECRET_KEY="k")
    assert defaults == {
        "SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT": 6,
        "SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL": "0:05:00",
        "SENDCONN_OUTBOUND_CONNECTION_FAILURE_RETRY_INTERVAL": "0:10:00",
        "SENDCONN_MESSAGE_EXPIRATION_TIMEOUT": "2 days, 0:00:00",
        "SENDCONN_DELAY_NOTIFICATION_TIMEOUT": "4:00:00",
        "SENDCONN_CLAIM_TIMEOUT": "0:15:00",  # above the task time limit: a live worker keeps its claims
        "CELERY_TASK_TIME_LIMIT": 600,
    }
    seconds = read_settings(
        tmp_path,
        names[:5],
        SECRET_KEY="k",
        SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT="2",
        SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL="1.5",
        SENDCONN_OUTBOUND_CONNECTION_FAILURE_RETRY_INTERVAL="3",
        SENDCONN_MESSAGE_EXPIRATION_TIMEOUT="60",
        SENDCONN_DELAY_NOTIFICATION_TIMEOUT="30",
    )
    assert list(seconds.values()) == [2, "0:00:01.500000", "0:00:03", "0:01:00", "0:00:30"]


def test_beat_runs_the_sweeper_and_no_countdown_outlasts_the_visibility_timeout(tmp_path):
    from sendconn.transport import wakeups

    conf = read_celery_conf(
        tmp_path,
        ["beat_schedule", "broker_transport_options"],
        SECRET_KEY="k",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/5",
        SENDCONN_SWEEP_INTERVAL="5",
    )
    sweep = conf["beat_schedule"]["sweep"]
    assert (sweep["task"], sweep["schedule"], sweep["options"]["expires"]) == ("sendconn.transport.tasks.sweep", 5, 5)
    # The only countdown: a coalesced wake-up, scheduled for the end of its window.
    assert wakeups.COALESCE_SECONDS < conf["broker_transport_options"]["visibility_timeout"]


def test_every_variable_is_documented_in_env_example_and_readme():
    import re

    source = (REPO / "sendconn" / "settings.py").read_text()
    variables = set(re.findall(r'(?:os\.environ\.get|env_\w+)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "SENDCONN_SERVER_NAME"} <= variables
    env_example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    undocumented = sorted(v for v in variables if f"#{v}=" not in env_example)
    assert not undocumented, f"add these to .env.example: {undocumented}"
    missing = sorted(v for v in variables if f"`{v}`" not in readme)
    assert not missing, f"add these to the README's configuration tables: {missing}"


def test_manage_py_names_a_bad_setting_without_a_traceback(tmp_path):
    code = "import runpy, sys; sys.argv = ['manage.py', 'smtpd']; runpy.run_path('manage.py', run_name='__main__')"
    result = run_python(code, tmp_path, DEBUG="true", SENDCONN_SMTP_PROCESSES="two")

    assert result.returncode == 1
    assert result.stderr.strip() == "Configuration error: SENDCONN_SMTP_PROCESSES must be a whole number, not 'two'"


def test_metrics_networks_are_read_and_a_bad_one_is_named(tmp_path):
    networks = read_settings(
        tmp_path, ["SENDCONN_METRICS_NETWORKS"], SECRET_KEY="k", SENDCONN_METRICS_NETWORKS="10.1.0.0/16, 2001:db8::1"
    )["SENDCONN_METRICS_NETWORKS"]
    assert networks == ["10.1.0.0/16", "2001:db8::1/128"]
    assert read_settings(tmp_path, ["SENDCONN_METRICS_NETWORKS"], SECRET_KEY="k")["SENDCONN_METRICS_NETWORKS"] == [
        "127.0.0.0/8",
        "::1/128",
    ]

    code = "import runpy, sys; sys.argv = ['manage.py', 'check']; runpy.run_path('manage.py', run_name='__main__')"
    result = run_python(code, tmp_path, DEBUG="true", SENDCONN_METRICS_NETWORKS="loopback")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Configuration error: SENDCONN_METRICS_NETWORKS: 'loopback' isn't an IP address or network."
    )


def test_each_var_dir_has_its_own_metrics_folder(tmp_path):
    """prometheus_client's folder follows SENDCONN_VAR_DIR, whatever a parent process had set."""
    code = "import os; from django.conf import settings; settings.DEBUG; print(os.environ['PROMETHEUS_MULTIPROC_DIR'])"
    result = run_python(code, tmp_path, SECRET_KEY="k", PROMETHEUS_MULTIPROC_DIR="/elsewhere")
    assert result.stdout.strip() == str(tmp_path / "var" / "metrics")
    assert (tmp_path / "var" / "metrics").is_dir()


def test_smtpd_runs_one_process_on_sqlite_and_one_per_cpu_on_a_database_server(tmp_path):
    embedded = read_settings(tmp_path, ["SENDCONN_SMTP_PROCESSES"], SECRET_KEY="k")
    served = read_settings(
        tmp_path, ["SENDCONN_SMTP_PROCESSES"], SECRET_KEY="k", DATABASE_URL="postgres://sendconn:s@db.internal/mail"
    )
    assert embedded["SENDCONN_SMTP_PROCESSES"] == 1  # one writer at a time anyway
    assert served["SENDCONN_SMTP_PROCESSES"] == (os.cpu_count() or 1)
