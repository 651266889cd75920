"""Keep secrets out of everything sqlrunner prints: logs, errors, dry runs, reports."""

from __future__ import annotations

import threading

MASK = "********"


class SecretRegistry:
    """The secret strings of one run (passwords, credentials); ``mask`` hides them in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        """Remember ``secret`` (ignores empty and very short values, which would mask noise)."""
        if secret and len(secret) >= 3:
            with self._lock:
                self._secrets.add(secret)

    def mask(self, text: str) -> str:
        """``text`` with every known secret replaced by ``********``."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
