"""sendconn settings: everything comes from the environment, with defaults for the embedded mode.

Embedded mode (no variables set): SQLite and a filesystem Celery broker under ``var/``, so one machine runs
web + worker + sweeper with no server to install. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to
PostgreSQL and Redis for the scale-out topology (see docker-compose.yml).
"""

import ipaddress
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from sendconn.accounts.roles import ROLE_GROUPS

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SENDCONN_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_seconds(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {value!r}") from None
    if seconds <= 0:
        raise ImproperlyConfigured(f"{name} must be greater than 0 seconds")
    return seconds


def env_int(name, default, minimum=0):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}")
    return number


def env_limit(name, default):
    """A whole number of at least 1, or ``unlimited`` (None), as Exchange's Unlimited<int> parameters take."""
    value = os.environ.get(name, "").strip()
    if value.lower() == "unlimited":
        return None
    try:
        return env_int(name, default, minimum=1)
    except ImproperlyConfigured:
        raise ImproperlyConfigured(f"{name} must be a whole number from 1, or unlimited, not {value!r}") from None


def env_networks(name, default=""):
    """``192.0.2.10,10.0.0.0/8,::1`` -> [ip_network]; empty -> []."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: '{item}' isn't an IP address or network.") from None
    return networks


def env_dns_servers(name):
    """``ip[:port],ip[:port]`` (IPv6 as ``[addr]:port`` or a bare address) -> [(ip, port)]; empty -> []."""
    servers = []
    for item in env_list(name):
        host, port = item, "53"
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ("53" if not rest else "bad")
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            address = str(ipaddress.ip_address(host))
            number = int(port)
            if not 0 < number < 65536:
                raise ValueError
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not a DNS server. Use ip[:port] separated by commas, "
                "for example 192.0.2.53 or 192.0.2.53:5353 or [2001:db8::53]:53."
            ) from None
        servers.append((address, number))
    return servers


def env_role_groups(name):
    """``Role group=directory group;…`` -> {role group: [directory groups]}; a role group may come back.

    Split at the first ``=`` only: a directory group is often a DN, full of them.
    """
    mapping: dict[str, list[str]] = {}
    for item in os.environ.get(name, "").split(";"):
        role_group, _, directory_group = (part.strip() for part in item.partition("="))
        if not item.strip():
            continue
        known = {known.lower(): known for known in ROLE_GROUPS}.get(role_group.lower())
        if known is None or not directory_group:
            raise ImproperlyConfigured(
                f"{name}: {item.strip()!r} is not 'role group=directory group'. The role groups are "
                + ", ".join(f'"{group}"' for group in ROLE_GROUPS)
                + "; separate pairs with ';'."
            )
        mapping.setdefault(known, []).append(directory_group)
    return mapping


DEFAULT_SECRET_KEY = "sendconn-insecure-development-key-change-me"
DEBUG = env_bool("DEBUG", False)
_secret_key_file = VAR_DIR / "secret_key"  # written once by `make run`


def secret_key_from_file(path):
    """The key `make run` generated, so every process of the embedded mode (and `manage.py cmdlet` run by hand)
    shares it without SECRET_KEY in the environment; "" when there is none."""
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return ""
    except OSError as error:
        raise ImproperlyConfigured(f"SECRET_KEY is not set and {path} can't be read: {error.strerror}") from None


SECRET_KEY = os.environ.get("SECRET_KEY") or secret_key_from_file(_secret_key_file) or DEFAULT_SECRET_KEY
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY and not env_bool("SENDCONN_ALLOW_DEFAULT_KEY", False):
    raise ImproperlyConfigured(
        f"SECRET_KEY is not set. Set SECRET_KEY to a long random value (or run `make run` once, which generates "
        f"{_secret_key_file}), or DEBUG=true for development."
    )
# Key for smart-host passwords at rest; derived from SECRET_KEY unless given.
SENDCONN_CREDENTIAL_KEY = os.environ.get("SENDCONN_CREDENTIAL_KEY", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# This machine as a transport server ("Select a Server" list, source servers, Celery queue names).
SENDCONN_SERVER_NAME = os.environ.get("SENDCONN_SERVER_NAME") or socket.gethostname().split(".")[0]
SENDCONN_SERVER_FQDN = os.environ.get("SENDCONN_SERVER_FQDN") or socket.getfqdn()
SENDCONN_SITE = os.environ.get("SENDCONN_SITE") or "Default-First-Site-Name"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # the widget templates, for the TemplatesSetting renderer
    "formtools",
    "django_htmx",
    "axes",
    "mozilla_django_oidc",
    "csp",
    "sendconn.accounts",
    "sendconn.connectors",
    "sendconn.shell",
    "sendconn.transport",
    "sendconn.verification",
    "sendconn.ops",
    "sendconn.observability",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into the lockout page
]

ROOT_URLCONF = "sendconn.urls"
WSGI_APPLICATION = "sendconn.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "sendconn.accounts.context_processors.role_flags",
            ],
        },
    },
]

FORM_RENDERER = "sendconn.renderers.ConsoleFormRenderer"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'sendconn.sqlite3'}",
        conn_max_age=60,
        # A kept connection is checked before its first use in each request or task, so one broken by a
        # database restart is replaced instead of failing the first request after it.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and sweeper share one file: writers queue on a file lock (see sendconn/sqlite), WAL for
    # concurrent readers, and a timeout for what still waits on SQLite's own lock.
    DATABASES["default"]["ENGINE"] = "sendconn.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# The throttle first: it refuses locked-out sign-ins before any password check. Then local accounts, so the
# bootstrap admin signs in whatever state the directory is in; the directory backends do nothing until configured.
AUTHENTICATION_BACKENDS = [
    "sendconn.accounts.lockouts.SignInThrottle",
    "django.contrib.auth.backends.ModelBackend",
    "sendconn.accounts.backends.DirectoryBackend",
    "sendconn.accounts.backends.OpenIDConnectBackend",
]

# --- Sign-in with LDAP / Active Directory (django-auth-ldap); off while SENDCONN_LDAP_SERVER_URI is empty ---
SENDCONN_LDAP_SERVER_URI = os.environ.get("SENDCONN_LDAP_SERVER_URI", "")  # ldap://dc01:389 or ldaps://dc01:636
SENDCONN_LDAP_BIND_DN = os.environ.get("SENDCONN_LDAP_BIND_DN", "")  # empty: search anonymously
SENDCONN_LDAP_BIND_PASSWORD = os.environ.get("SENDCONN_LDAP_BIND_PASSWORD", "")
SENDCONN_LDAP_USER_SEARCH_BASE = os.environ.get("SENDCONN_LDAP_USER_SEARCH_BASE", "")
SENDCONN_LDAP_USER_FILTER = os.environ.get("SENDCONN_LDAP_USER_FILTER") or "(sAMAccountName=%(user)s)"
SENDCONN_LDAP_GROUP_SEARCH_BASE = os.environ.get("SENDCONN_LDAP_GROUP_SEARCH_BASE") or SENDCONN_LDAP_USER_SEARCH_BASE
# How the directory stores members; the Nested types follow groups within groups.
LDAP_GROUP_TYPES = ("NestedActiveDirectory", "ActiveDirectory", "NestedGroupOfNames", "GroupOfNames")
SENDCONN_LDAP_GROUP_TYPE = os.environ.get("SENDCONN_LDAP_GROUP_TYPE") or "NestedActiveDirectory"
SENDCONN_LDAP_ROLE_GROUPS = env_role_groups("SENDCONN_LDAP_ROLE_GROUPS")  # {role group: [group DNs]}
SENDCONN_LDAP_START_TLS = env_bool("SENDCONN_LDAP_START_TLS", False)
SENDCONN_LDAP_CA_FILE = os.environ.get("SENDCONN_LDAP_CA_FILE", "")  # empty: the system's store
SENDCONN_LDAP_TIMEOUT = env_seconds("SENDCONN_LDAP_TIMEOUT", 5.0)  # to connect, and per request
if SENDCONN_LDAP_SERVER_URI and not SENDCONN_LDAP_USER_SEARCH_BASE:
    raise ImproperlyConfigured(
        "SENDCONN_LDAP_USER_SEARCH_BASE is not set: say where the users are, e.g. CN=Users,DC=contoso,DC=com"
    )
if SENDCONN_LDAP_GROUP_TYPE not in LDAP_GROUP_TYPES:
    raise ImproperlyConfigured(
        f"SENDCONN_LDAP_GROUP_TYPE must be one of {', '.join(LDAP_GROUP_TYPES)}, not {SENDCONN_LDAP_GROUP_TYPE!r}"
    )

# --- Sign-in with OpenID Connect (mozilla-django-oidc): Entra ID, Keycloak, Okta; off while the client ID is empty ---
OIDC_RP_CLIENT_ID = os.environ.get("SENDCONN_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("SENDCONN_OIDC_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("SENDCONN_OIDC_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("SENDCONN_OIDC_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("SENDCONN_OIDC_USERINFO_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("SENDCONN_OIDC_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = "RS256"  # what Entra ID, Keycloak and Okta sign ID tokens with
OIDC_RP_SCOPES = os.environ.get("SENDCONN_OIDC_SCOPES") or "openid email profile"
OIDC_VERIFY_SSL = os.environ.get("SENDCONN_OIDC_CA_FILE") or True  # a CA bundle, or the system's store
OIDC_TIMEOUT = 10
# The button says "Sign in with <name>".
SENDCONN_OIDC_PROVIDER_NAME = os.environ.get("SENDCONN_OIDC_PROVIDER_NAME") or "OpenID Connect"
SENDCONN_OIDC_USERNAME_CLAIM = os.environ.get("SENDCONN_OIDC_USERNAME_CLAIM") or "preferred_username"
SENDCONN_OIDC_GROUPS_CLAIM = os.environ.get("SENDCONN_OIDC_GROUPS_CLAIM") or "groups"
SENDCONN_OIDC_ROLE_GROUPS = env_role_groups("SENDCONN_OIDC_ROLE_GROUPS")  # {role group: [group IDs or names]}
if OIDC_RP_CLIENT_ID and not all(
    (OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT, OIDC_OP_JWKS_ENDPOINT)
):
    raise ImproperlyConfigured(
        "SENDCONN_OIDC_CLIENT_ID is set: set SENDCONN_OIDC_AUTHORIZATION_ENDPOINT, SENDCONN_OIDC_TOKEN_ENDPOINT, "
        "SENDCONN_OIDC_USERINFO_ENDPOINT and SENDCONN_OIDC_JWKS_ENDPOINT too (the provider's "
        ".well-known/openid-configuration lists them)"
    )

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}

# Sign-in throttling (django-axes): 5 failed passwords for a user name, or from an address, within 15 minutes
# lock sign-in for that name or address for 15 minutes; attempts made meanwhile are refused without counting.
# Organization Management lifts a lockout on the permissions page.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "sendconn.accounts.lockouts.client_ip"
AXES_ENABLE_ADMIN = False
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are the users' last_login; only failures are kept
# Reverse proxies in front of the console: a request from one of these takes its client address from
# X-Forwarded-For (for throttling sign-in); from anyone else, REMOTE_ADDR is the client.
SENDCONN_TRUSTED_PROXIES = env_networks("SENDCONN_TRUSTED_PROXIES")

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
# Only the console's own script and style files run (htmx is one of them): no inline code, no other origins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # the empty data: favicon of base.html
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Celery: the database is the mail queue; the broker only carries wake-ups. ---
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The filesystem transport ignores the host, but kombu logs a warning for every connection to a URL without one.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT = "sendconn.broker:FilesystemTransport"  # messages that appear whole (see there)
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu sleeps this long whenever it finds nothing it may take, including while every pool process is
        # busy: at its 1 s default the pool idles most of the time once tasks are short. Listing a folder is cheap.
        "polling_interval": 0.05,
    }
    # kombu does not create these; every process (web, worker, beat, cmdlet) may be the first to need them.
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Above any countdown we use, so Redis never redelivers a task that is only waiting.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3 * 3600}
# Tasks ignore results; the few diagnostics that return one (ping_connectors) need a backend.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND")
if not CELERY_RESULT_BACKEND and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL
elif not CELERY_RESULT_BACKEND:
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
    CELERY_RESULT_BACKEND = f"file://{(VAR_DIR / 'results').resolve()}"
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Wake-ups take a millisecond, and the threads pool's acks are made by the consumer between two reads of the broker,
# a read that waits up to 2 s while the prefetch window is full: at one task per thread, every burst of wake-ups
# (a next hop each) stalled 2 s after the first four, and at 50 ms from the MX that halved delivery. A wide window
# lets the consumer read on (and ack between reads); what a dead worker held, the sweeper wakes again.
CELERY_WORKER_PREFETCH_MULTIPLIER = 16
# Celery's Django fixup closes the database connection before and after every task unless told to reuse it, and
# reconnecting cost a short delivery task more than its queries. Each task checks its connection first
# (transport/worker.py) and Celery recycles it after this many tasks.
CELERY_DB_REUSE_MAX = 200
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TIMEZONE = "UTC"

# --- Transport logs, with Set-TransportService's defaults (sizes in bytes, ages in seconds; age 0 = keep) ---
# SMTP Send protocol log (SendProtocolLogPath / MaxFileSize / MaxDirectorySize / MaxAge).
SENDCONN_PROTOCOL_LOG_DIR = Path(os.environ.get("SENDCONN_PROTOCOL_LOG_DIR") or VAR_DIR / "logs/ProtocolLog/SmtpSend")
SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE = env_int("SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE", 10 * 1024 * 1024, minimum=1)
SENDCONN_PROTOCOL_LOG_MAX_DIRECTORY_SIZE = env_int(
    "SENDCONN_PROTOCOL_LOG_MAX_DIRECTORY_SIZE", 250 * 1024 * 1024, minimum=1
)
SENDCONN_PROTOCOL_LOG_MAX_AGE = timedelta(seconds=env_int("SENDCONN_PROTOCOL_LOG_MAX_AGE", 30 * 86400))
# Message tracking log (MessageTrackingLogPath / MaxFileSize / MaxDirectorySize / MaxAge).
SENDCONN_TRACKING_LOG_DIR = Path(os.environ.get("SENDCONN_TRACKING_LOG_DIR") or VAR_DIR / "logs/MessageTracking")
SENDCONN_TRACKING_LOG_MAX_FILE_SIZE = env_int("SENDCONN_TRACKING_LOG_MAX_FILE_SIZE", 10 * 1024 * 1024, minimum=1)
SENDCONN_TRACKING_LOG_MAX_DIRECTORY_SIZE = env_int(
    "SENDCONN_TRACKING_LOG_MAX_DIRECTORY_SIZE", 1000 * 1024 * 1024, minimum=1
)
SENDCONN_TRACKING_LOG_MAX_AGE = timedelta(seconds=env_int("SENDCONN_TRACKING_LOG_MAX_AGE", 30 * 86400))

# --- Delivery: DNS and TLS for outbound SMTP ---
# Resolvers for MX lookups; empty = the system's (/etc/resolv.conf). The external list serves connectors with
# UseExternalDNSServersEnabled (Exchange's ExternalDNSServers); empty = the same as SENDCONN_DNS_SERVERS.
SENDCONN_DNS_SERVERS = env_dns_servers("SENDCONN_DNS_SERVERS")
SENDCONN_EXTERNAL_DNS_SERVERS = env_dns_servers("SENDCONN_EXTERNAL_DNS_SERVERS")
SENDCONN_DNS_TIMEOUT = env_seconds("SENDCONN_DNS_TIMEOUT", 5.0)  # per server
SENDCONN_DNS_LIFETIME = env_seconds("SENDCONN_DNS_LIFETIME", 15.0)  # per lookup, all servers and retries
# PEM bundle that TlsAuthLevel CertificateValidation / DomainValidation trust; empty = the system's store.
SENDCONN_TLS_CA_FILE = os.environ.get("SENDCONN_TLS_CA_FILE", "")
# Verify delivery: the test message's sender (empty = ConnectorValidation@<the sending server's FQDN>) and how
# long it waits for the connection and for each reply.
SENDCONN_VERIFY_SENDER = os.environ.get("SENDCONN_VERIFY_SENDER", "")
SENDCONN_VERIFY_TIMEOUT = env_seconds("SENDCONN_VERIFY_TIMEOUT", 30.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {
        "refusals_without_traceback": {"()": "sendconn.log_filters.RefusalsWithoutTraceback"},
        "axes_without_request": {"()": "sendconn.log_filters.AxesWithoutRequest"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["refusals_without_traceback"]},
        "axes": {"level": "WARNING"},  # failed sign-ins and lockouts, not every successful one
        "axes.handlers.proxy": {"filters": ["axes_without_request"]},
        "axes.handlers.database": {"filters": ["axes_without_request"]},
        # Celery's line per task received and done, and beat's per task sent: every wake-up and every sweep (each
        # 15 s) at INFO would drown what matters; the sweep task says when it did something.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
    },
}

# --- Transport: the submission listener (smtpd), Exchange's receive connector ---
SENDCONN_SMTP_LISTEN = os.environ.get("SENDCONN_SMTP_LISTEN") or "127.0.0.1:2525"  # host:port, [v6]:port
# Listener processes sharing the socket: one event loop uses one core at most. On SQLite one (a second only queues
# for the same write lock, and takes the core the worker needs: 10-20 % fewer messages a second on 2 cores).
SENDCONN_SMTP_PROCESSES = env_int(
    "SENDCONN_SMTP_PROCESSES",
    1 if DATABASES["default"]["ENGINE"] == "sendconn.sqlite" else os.cpu_count() or 1,
    minimum=1,
)
# Clients that may relay to any domain (an anonymous-relay receive connector's RemoteIPRanges).
SENDCONN_RELAY_NETWORKS = env_list("SENDCONN_RELAY_NETWORKS", "127.0.0.0/8,::1")
# Domains the organisation accepts mail for (contoso.com, or *.contoso.com with subdomains): anyone may send
# to these; every other domain only relay clients may reach (no open relay).
SENDCONN_ACCEPTED_DOMAINS = env_list("SENDCONN_ACCEPTED_DOMAINS")
# PEM certificate (and key, if not in the same file) for STARTTLS; AUTH is offered only inside TLS.
SENDCONN_SMTP_TLS_CERT = os.environ.get("SENDCONN_SMTP_TLS_CERT", "")
SENDCONN_SMTP_TLS_KEY = os.environ.get("SENDCONN_SMTP_TLS_KEY", "")
SENDCONN_SMTP_MAX_MESSAGE_SIZE = env_int("SENDCONN_SMTP_MAX_MESSAGE_SIZE", 36700160, minimum=1)  # 35 MB; 552 beyond
# A Receive connector's MaxInboundConnection and MaxInboundConnectionPerSource (421 4.3.2 beyond; counted across
# the SENDCONN_SMTP_PROCESSES), and MaxRecipientsPerMessage (452 4.5.3 beyond).
SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS = env_limit("SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS", 5000)
SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS_PER_SOURCE = env_limit("SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS_PER_SOURCE", 20)
SENDCONN_SMTP_MAX_RECIPIENTS_PER_MESSAGE = env_int("SENDCONN_SMTP_MAX_RECIPIENTS_PER_MESSAGE", 200, minimum=1)

# --- Transport: delivery timers, with Set-TransportService's names and defaults (seconds in the environment) ---
# A transient failure (4xx, connection, DNS) is retried TransientFailureRetryCount times TransientFailureRetryInterval
# apart, then every OutboundConnectionFailureRetryInterval until MessageExpirationTimeout after submission, when the
# recipient fails with 4.4.7 and an NDR. The sender gets one delay notification after DelayNotificationTimeout.
SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT = env_int("SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT", 6)
SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL = timedelta(
    seconds=env_seconds("SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL", 5 * 60)
)
SENDCONN_OUTBOUND_CONNECTION_FAILURE_RETRY_INTERVAL = timedelta(
    seconds=env_seconds("SENDCONN_OUTBOUND_CONNECTION_FAILURE_RETRY_INTERVAL", 10 * 60)
)
SENDCONN_MESSAGE_EXPIRATION_TIMEOUT = timedelta(seconds=env_seconds("SENDCONN_MESSAGE_EXPIRATION_TIMEOUT", 2 * 86400))
SENDCONN_DELAY_NOTIFICATION_TIMEOUT = timedelta(seconds=env_seconds("SENDCONN_DELAY_NOTIFICATION_TIMEOUT", 4 * 3600))
# Exchange's QueueMaxIdleTime: a delivery queue that emptied stays listed (and can be suspended) this long.
SENDCONN_QUEUE_MAX_IDLE_TIME = timedelta(seconds=env_seconds("SENDCONN_QUEUE_MAX_IDLE_TIME", 3 * 60))
# The sweeper (Celery beat) runs this often: stale claims, expiry, delay notices, Unreachable, lost wake-ups.
SENDCONN_SWEEP_INTERVAL = env_seconds("SENDCONN_SWEEP_INTERVAL", 15.0)
# A claim older than this belongs to a dead worker and is released. Keep it above the task time limit, so a live
# worker never loses the recipients it is sending.
SENDCONN_CLAIM_TIMEOUT = timedelta(seconds=env_seconds("SENDCONN_CLAIM_TIMEOUT", CELERY_TASK_TIME_LIMIT + 300))
# Recipients a delivery engine claims of one next hop at a time.
SENDCONN_DELIVERY_BATCH_SIZE = env_int("SENDCONN_DELIVERY_BATCH_SIZE", 100, minimum=1)
# Outbound SMTP: the TCP connect (Postfix's smtp_connect_timeout), then each whole reply, the greeting included
# (Postfix's smtp_helo_timeout and the command timeouts; the reply to the end of data gets twice as long).
SENDCONN_SMTP_CONNECT_TIMEOUT = timedelta(seconds=env_seconds("SENDCONN_SMTP_CONNECT_TIMEOUT", 30))
SENDCONN_SMTP_COMMAND_TIMEOUT = timedelta(seconds=env_seconds("SENDCONN_SMTP_COMMAND_TIMEOUT", 300))
CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": "sendconn.transport.tasks.sweep",
        "schedule": SENDCONN_SWEEP_INTERVAL,
        "options": {"expires": SENDCONN_SWEEP_INTERVAL},  # a sweep that waited a whole interval is superseded
    },
}

# --- Observability: /metrics, /healthz, /readyz ---
# Who may read /metrics: clients from these networks, or any client sending "Authorization: Bearer <token>".
SENDCONN_METRICS_NETWORKS = env_networks("SENDCONN_METRICS_NETWORKS", "127.0.0.0/8,::1")
SENDCONN_METRICS_TOKEN = os.environ.get("SENDCONN_METRICS_TOKEN", "")
# prometheus_client's multiprocess mode: every process (gunicorn and Celery workers, smtpd listeners) writes its
# counters to files here and /metrics adds them up. The client reads the variable when it is first imported,
# which is after the settings in every process; set here rather than inherited, so processes of another var
# dir never share the folder. `runall` empties it before starting the processes.
SENDCONN_METRICS_DIR = VAR_DIR / "metrics"
SENDCONN_METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(SENDCONN_METRICS_DIR)
