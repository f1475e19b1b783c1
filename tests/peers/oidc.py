"""An OpenID Connect provider on loopback: django-oidc-provider in a second process (tests/peers/oidc_provider).

    with OidcProvider(tmp_path, client_id="sendconn", client_secret="s3cret",
                      redirect_uri="http://testserver/oidc/callback/",
                      users=[{"username": "alice", "password": "pw", "groups": ["Exchange Admins"]}]) as provider:
        provider.endpoints                   # authorization, token, userinfo, jwks URLs
        provider.sign_in(authorize_url, "alice", "pw")   # -> the redirect back to the client, with code and state

``sign_in`` is the user's browser at the provider: it follows the redirects to the provider's sign-in form, posts
the password and returns the provider's final redirect to the client without following it.
"""

import json
import re
import selectors
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urljoin

import requests

from . import Peer

REPO = Path(__file__).resolve().parents[2]


class OidcProvider(Peer):
    def __init__(self, client_id, client_secret, redirect_uri, users, start_timeout=60.0):
        self.config = {
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "users": users,
        }
        self.start_timeout = start_timeout
        self.directory = None
        self.port = None
        self._process = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/openid"

    @property
    def endpoints(self):
        return {
            "authorization": f"{self.base_url}/authorize",
            "token": f"{self.base_url}/token",
            "userinfo": f"{self.base_url}/userinfo",
            "jwks": f"{self.base_url}/jwks",
        }

    def start(self):
        self.directory = tempfile.TemporaryDirectory(prefix="sendconn-oidc-")
        log = open(Path(self.directory.name) / "provider.log", "wb")
        env = {
            "OIDC_PROVIDER_DB": str(Path(self.directory.name) / "provider.sqlite3"),
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.peers.oidc_provider.serve", json.dumps(self.config)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        line = _read_line(self._process, self.start_timeout)
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the OIDC provider did not start: {line!r}")
        self.port = int(line)

    def stop(self):
        if self._process:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()
            self._process = None
        if self.directory:
            self.directory.cleanup()
            self.directory = None

    def sign_in(self, authorize_url, username, password):
        browser = requests.Session()
        response = browser.get(authorize_url, timeout=10)  # redirected to the provider's sign-in form
        response.raise_for_status()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text).group(1)
        next_url = re.search(r'name="next" value="([^"]*)"', response.text).group(1).replace("&amp;", "&")
        response = browser.post(
            response.url,
            data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": next_url},
            headers={"Referer": response.url},
            allow_redirects=False,
            timeout=10,
        )
        own_pages = ("/", f"http://127.0.0.1:{self.port}/")
        while response.is_redirect and response.headers["Location"].startswith(own_pages):
            response = browser.get(
                urljoin(response.url, response.headers["Location"]), allow_redirects=False, timeout=10
            )
        if not response.is_redirect:
            raise AssertionError(
                f"the provider did not send the user back: {response.status_code} {response.text[:500]}"
            )
        return response.headers["Location"]


def _read_line(process, timeout):
    """The first line the provider prints (its port), or what it said on the way out."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline().decode()
