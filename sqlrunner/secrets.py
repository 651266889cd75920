"""Keep secrets out of everything sqlrunner prints: logs, errors, dry runs, reports."""

from __future__ import annotations

import re
import threading

MASK = "********"
_PATTERNS = re.compile(
    r"((?:aws_secret_access_key|secret_access_key|token|password)\s*=\s*)[^;'\"\s]+"
    r"|(\bPASSWORD\s+')[^']*"
    r"|(://[^:/@\s]+:)[^@/\s]+(?=@)",
    re.IGNORECASE,
)


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
        """``text`` with every known secret, and every credential-looking value
        (``aws_secret_access_key=...``, ``token=...``, ``PASSWORD '...'``,
        ``user:password@`` in a URL), replaced by ``********``."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return _PATTERNS.sub(lambda m: next(g for g in m.groups() if g is not None) + MASK,
                             text)
