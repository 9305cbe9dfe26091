"""Secrets at rest: provider API keys encrypted with Fernet under a master secret.

The master secret comes from the environment, ``SMARTOKEN_SECRET_KEY``: one or more keys
separated by commas, the first used to encrypt, all tried to decrypt (``MultiFernet``). A key
is either a Fernet key (``smartoken secrets generate-key``) or any passphrase of 16+
characters, stretched to a Fernet key with SHA-256. Rotation: put the new key first and keep
the old one after it, run ``smartoken secrets rotate`` (re-encrypts every stored secret under
the new key), then drop the old key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cryptography (~8 MiB a worker) is loaded when a box is made
    from cryptography.fernet import Fernet, MultiFernet

ENV = "SMARTOKEN_SECRET_KEY"
MIN_PASSPHRASE = 16


class SecretKeyError(ValueError):
    """The master secret is missing, malformed, or cannot decrypt a stored value."""


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _fernet(key: str) -> Fernet:
    from cryptography.fernet import Fernet

    try:
        raw = base64.urlsafe_b64decode(key.encode())
        if len(raw) == 32:
            return Fernet(key.encode())
    except (binascii.Error, ValueError):
        pass
    if len(key) < MIN_PASSPHRASE:
        raise SecretKeyError(f"{ENV}: each key must be a Fernet key (smartoken secrets "
                             f"generate-key) or a passphrase of at least {MIN_PASSPHRASE} "
                             "characters")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretKeyError(f"{ENV} is not set: it is needed to store provider API keys "
                                 "encrypted in the database")
        from cryptography.fernet import MultiFernet

        self._multi: MultiFernet = MultiFernet([_fernet(k) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, what: str = "a stored secret") -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._multi.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(f"cannot decrypt {what}: none of the keys in {ENV} matches "
                                 "(was the master secret changed without keeping the old key "
                                 "after the new one?)") from None

    def rotate(self, token: str, what: str = "a stored secret") -> str:
        """Re-encrypt under the first (newest) key."""
        from cryptography.fernet import InvalidToken

        try:
            return self._multi.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(f"cannot decrypt {what} with any key in {ENV}") from None
