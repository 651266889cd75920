"""SQL Runner's template functions: nowWithFormat, systemEnv, randomInt, AWS credentials."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlrunner.gotime import format_go_time
from sqlrunner.secrets import SecretRegistry

_SECRET_ENV_WORDS = ("PASSWORD", "SECRET", "TOKEN", "CREDENTIAL", "KEY")


def runner_functions(
    now: datetime | None = None, secrets: SecretRegistry | None = None
) -> dict[str, Callable[..., Any]]:
    """The functions SQL Runner adds to every template.

    ``now`` is the run's start time: unlike SQL Runner, which reads the clock at
    every call, one run renders one consistent time (and a resumed run the same).
    """
    started = (now or datetime.now().astimezone()).astimezone()
    # Seeded by the run's start, so a resumed run renders the same "random" numbers.
    numbers = random.Random(started.isoformat())
    registry = secrets or SecretRegistry()

    def now_with_format(layout: str) -> str:
        return format_go_time(started, layout)

    def system_env(name: str) -> str:
        value = os.environ.get(name, "")
        if any(word in name.upper() for word in _SECRET_ENV_WORDS):
            registry.add(value)
        return value

    def random_int() -> int:
        return numbers.getrandbits(63)

    def credentials(access_key: str, secret_key: str, token: str | None) -> str:
        registry.add(secret_key)
        registry.add(token)
        clause = f"aws_access_key_id={access_key};aws_secret_access_key={secret_key}"
        if token:
            clause += f";token={token}"
        return f"CREDENTIALS '{clause}'"

    def aws_env_credentials() -> str:
        access = os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY")
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY") or os.environ.get("AWS_SECRET_KEY")
        if not access or not secret:
            raise ValueError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
        return credentials(access, secret, os.environ.get("AWS_SESSION_TOKEN"))

    def from_botocore(profile: str | None, what: str) -> str:
        try:
            import botocore.session
        except ImportError:
            raise ValueError(f"{what} needs boto3: pip install 'sqlrunner[aws]'") from None
        session = botocore.session.Session(profile=profile or None)
        found = session.get_credentials()
        if found is None:
            raise ValueError(f"{what}: no AWS credentials found")
        frozen = found.get_frozen_credentials()
        return credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return {
        "nowWithFormat": now_with_format,
        "systemEnv": system_env,
        "randomInt": random_int,
        "awsEnvCredentials": aws_env_credentials,
        "awsProfileCredentials": lambda profile: from_botocore(profile, "awsProfileCredentials"),
        "awsEC2RoleCredentials": lambda: from_botocore(None, "awsEC2RoleCredentials"),
        "awsChainCredentials": lambda profile: from_botocore(profile, "awsChainCredentials"),
    }
