"""Test settings: sendconn's own settings with a fixed identity for the local transport server."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production")
os.environ.setdefault("SENDCONN_SERVER_NAME", "EX01")
os.environ.setdefault("SENDCONN_SERVER_FQDN", "ex01.contoso.test")
os.environ.setdefault("SENDCONN_VAR_DIR", tempfile.mkdtemp(prefix="sendconn-tests-"))

from sendconn.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
