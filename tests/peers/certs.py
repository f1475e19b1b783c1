"""Throwaway X.509 certificates for STARTTLS tests: a test CA and leaves that pass or fail each check.

certs = make_test_certificates(tmp_path, "mx.contoso.test")
SmtpSink(tls_cert=certs.valid)                  # chain to certs.ca_file, names mx.contoso.test + 127.0.0.x
SmtpSink(tls_cert=certs.expired / certs.wrong_name / certs.untrusted / certs.self_signed)
"""

import datetime
import ipaddress
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class TestCertificates:
    __test__ = False  # not a pytest test class

    ca_file: Path  # the trust anchor tests hand to the client (SENDCONN_TLS_CA_FILE)
    valid: Certificate
    expired: Certificate
    wrong_name: Certificate  # chains to the CA, but for another name
    untrusted: Certificate  # right name, issued by a CA the client doesn't know
    self_signed: Certificate


class CertificateAuthority:
    def __init__(self, directory, name="sendconn test CA"):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        self.certificate = (
            _builder(self.name, self.name, self.key.public_key(), now - _DAY, now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = self.directory / f"{_slug(name)}.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, *names, filename=None, not_before=None, not_after=None):
        """A leaf for DNS names and IP addresses; the first name is the subject CN."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        certificate = (
            _builder(
                _subject(names[0]), self.name, key.public_key(), not_before or now - _DAY, not_after or now + 30 * _DAY
            )
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return _write(self.directory, filename or _slug(names[0]), certificate, key)


def make_test_certificates(directory, name="mx.contoso.test", addresses=("127.0.0.1", "127.0.0.2", "127.0.0.3")):
    directory = Path(directory)
    ca = CertificateAuthority(directory)
    other_ca = CertificateAuthority(directory / "other", name="unknown test CA")
    names = (name, *addresses)
    now = _now()
    key = ec.generate_private_key(ec.SECP256R1())
    self_signed = (
        _builder(_subject(name), _subject(name), key.public_key(), now - _DAY, now + 30 * _DAY)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TestCertificates(
        ca_file=ca.ca_file,
        valid=ca.issue(*names, filename="valid"),
        expired=ca.issue(*names, filename="expired", not_before=now - 10 * _DAY, not_after=now - _DAY),
        wrong_name=ca.issue("wrong.example.test", *addresses, filename="wrong-name"),
        untrusted=other_ca.issue(*names, filename="untrusted"),
        self_signed=_write(directory, "self-signed", self_signed, key),
    )


def legacy_tls_context(certificate):
    """A server TLS context offering only TLS 1.1 and older, which our client refuses: STARTTLS fails to negotiate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert_file, certificate.key_file)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


_DAY = datetime.timedelta(days=1)


def _now():
    return datetime.datetime.now(datetime.UTC)


def _builder(subject, issuer, public_key, not_before, not_after):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _ca_usage():
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _subject(name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def _general_name(name):
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _slug(name):
    return name.replace("*", "wildcard").replace(" ", "-")


def _write(directory, stem, certificate, key):
    cert_file = Path(directory) / f"{stem}.pem"
    key_file = Path(directory) / f"{stem}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(cert_file, key_file)
