"""OpenLDAP's slapd on loopback with a throwaway database: the directory users sign in with.

    with Slapd(ldif, suffix="dc=contoso,dc=test", tls_cert=certs.valid) as directory:
        directory.uri, directory.ldaps_uri                  # ldap://127.0.0.1:<port>, ldaps://127.0.0.1:<port>
        directory.remove_member("cn=Exchange Admins,…", "uid=alice,…")

Started in the foreground (``-d 0``) from a slapd.conf in a temporary directory, the database loaded with
slapadd first; stopped with SIGTERM. Debian's packaged slapd service is not needed, nor touched.
"""

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import ldap

from . import Peer, free_port

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
ROOT_PASSWORD = "directory-manager-password"


def slapd_installed():
    return Path(SLAPD).exists() and (SCHEMA_DIR / "inetorgperson.schema").exists()


class Slapd(Peer):
    def __init__(self, ldif, suffix, tls_cert=None, start_timeout=10.0):
        self.ldif = ldif
        self.suffix = suffix
        self.root_dn = f"cn=admin,{suffix}"
        self.tls_cert = tls_cert
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.port = self.ldaps_port = None
        self.directory = None
        self._process = None

    @property
    def uri(self):
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_uri(self):
        return f"ldaps://{self.host}:{self.ldaps_port}"

    def start(self):
        self.directory = Path(tempfile.mkdtemp(prefix="sendconn-slapd-"))
        (self.directory / "db").mkdir()
        self._write_config()
        (self.directory / "data.ldif").write_text(self.ldif)
        subprocess.run(
            [SLAPADD, "-f", str(self._conf), "-l", str(self.directory / "data.ldif")],
            check=True,
            capture_output=True,
            text=True,
        )
        last_error = None
        for _ in range(3):  # another process may take the port between our probe and slapd's bind
            self.port, self.ldaps_port = free_port(self.host), free_port(self.host)
            try:
                self._launch()
                return
            except RuntimeError as error:
                last_error = error
                self._terminate()
        self.stop()
        raise last_error

    def stop(self):
        self._terminate()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def connect(self):
        """A connection bound as the directory's manager, to change entries during a test."""
        connection = ldap.initialize(self.uri)
        connection.simple_bind_s(self.root_dn, ROOT_PASSWORD)
        return connection

    def remove_member(self, group_dn, member_dn):
        connection = self.connect()
        try:
            connection.modify_s(group_dn, [(ldap.MOD_DELETE, "member", [member_dn.encode()])])
        finally:
            connection.unbind_s()

    @property
    def _conf(self):
        return self.directory / "slapd.conf"

    def _write_config(self):
        schemas = "".join(f"include {SCHEMA_DIR / name}.schema\n" for name in ("core", "cosine", "inetorgperson"))
        tls = ""
        if self.tls_cert:
            tls = f"TLSCertificateFile {self.tls_cert.cert_file}\nTLSCertificateKeyFile {self.tls_cert.key_file}\n"
        self._conf.write_text(
            f"""{schemas}modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {self.directory}/slapd.pid
{tls}
database mdb
maxsize 10485760
suffix "{self.suffix}"
rootdn "{self.root_dn}"
rootpw {ROOT_PASSWORD}
directory {self.directory}/db
access to attrs=userPassword by anonymous auth by self write by * none
access to * by * read
"""
        )

    def _launch(self):
        urls = self.uri + "/" + (f" {self.ldaps_uri}/" if self.tls_cert else "")
        log = open(self.directory / "slapd.out", "wb")
        self._process = subprocess.Popen([SLAPD, "-d", "0", "-f", str(self._conf), "-h", urls], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self._process.returncode}: {self._log_tail()}")
            if self._answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"slapd did not answer on {self.uri} within {self.start_timeout}s: {self._log_tail()}")

    def _answers(self):
        connection = ldap.initialize(self.uri)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 0.5)
        try:
            connection.simple_bind_s(self.root_dn, ROOT_PASSWORD)
            return True
        except ldap.LDAPError:
            return False
        finally:
            connection.unbind_s()

    def _terminate(self):
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def _log_tail(self):
        try:
            return (self.directory / "slapd.out").read_text(errors="replace")[-2000:]
        except OSError:
            return ""
