"""Encryption at rest for smart-host passwords (Fernet: AES-128-CBC + HMAC-SHA256)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialKeyError(Exception):
    """The stored password cannot be decrypted with the configured key."""


def _fernet():
    key: str | bytes = settings.SENDCONN_CREDENTIAL_KEY
    if not key:
        # Derive a stable key from SECRET_KEY so the embedded mode needs no extra setting.
        digest = hashlib.sha256(("sendconn-credentials:" + settings.SECRET_KEY).encode()).digest()
        key = base64.urlsafe_b64encode(digest)
    return Fernet(key)


def encrypt(plaintext):
    return _fernet().encrypt(plaintext.encode())


def decrypt(token):
    try:
        return _fernet().decrypt(token).decode()
    except InvalidToken:
        raise CredentialKeyError(
            "The stored AuthenticationCredential can't be decrypted: SECRET_KEY or SENDCONN_CREDENTIAL_KEY changed."
        ) from None
