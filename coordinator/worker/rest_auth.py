"""Who may call the REST API: bearer tokens or HTTP basic credentials, each with a role.

Credentials come from a file (``--rest-auth FILE``, or ``SLUICE_REST_AUTH``), one per line::

    # role  scheme  secret
    admin   bearer  3b1f...            # may do everything
    read    bearer  9c2e...            # GET only (and PUT /validate, which changes nothing)
    admin   basic   ops:s3cret         # user:password

or from ``SLUICE_REST_TOKENS`` (``admin:TOKEN,read:TOKEN``, bearer tokens). ``/health``
answers without credentials (load balancers and container health checks ask it; it says
only whether the worker is up). A worker with no credentials configured listens on
127.0.0.1 only; asked for another address, it refuses to start.

Secrets are compared in constant time (:func:`hmac.compare_digest`) and never logged.
"""

from __future__ import annotations

import base64
import hmac
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from coordinator.errors import ConfigError

ROLES = ("admin", "read")
READ_ONLY_WRITES = {("PUT", "validate")}
"""Non-GET calls a read-only caller may make: they change nothing."""


@dataclass(frozen=True)
class Credential:
    role: str
    scheme: str  # bearer | basic
    secret: str


class RestAuth:
    def __init__(self, credentials: list[Credential]) -> None:
        self.credentials = credentials

    @property
    def enabled(self) -> bool:
        return bool(self.credentials)

    def role_of(self, authorization: str | None) -> str | None:
        """The role an ``Authorization`` header grants, or None."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "basic":
            try:
                value = base64.b64decode(value, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return None
        role = None
        for c in self.credentials:  # every one compared: the time says nothing of which
            if c.scheme == scheme and hmac.compare_digest(c.secret.encode(), value.encode()):
                role = c.role
        return role

    def decide(self, method: str, path_parts: list[str], authorization: str | None) -> int:
        """200 to go on, 401 (who are you?) or 403 (not with that role)."""
        if not self.enabled or path_parts == ["health"]:
            return 200
        role = self.role_of(authorization)
        if role is None:
            return 401
        if role == "admin" or method in ("GET", "HEAD"):
            return 200
        return 200 if (method, "/".join(path_parts)) in READ_ONLY_WRITES else 403


def _parse_file(path: str) -> list[Credential]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"--rest-auth {path}: cannot read it: {e.strerror or e}") from None
    out = []
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) != 3 or fields[0] not in ROLES or fields[1] not in ("bearer", "basic"):
            raise ConfigError(
                f"--rest-auth {path}:{n}: expected 'ROLE SCHEME SECRET' with ROLE admin or "
                "read and SCHEME bearer or basic (user:password)"
            )
        if fields[1] == "basic" and ":" not in fields[2]:
            raise ConfigError(f"--rest-auth {path}:{n}: basic credentials are user:password")
        out.append(Credential(fields[0], fields[1], fields[2]))
    if not out:
        raise ConfigError(f"--rest-auth {path}: no credentials in it")
    return out


def _parse_tokens(text: str) -> list[Credential]:
    out = []
    for i, item in enumerate(filter(None, (t.strip() for t in text.split(",")))):
        role, sep, token = item.partition(":")
        if not sep or role not in ROLES or not token:
            raise ConfigError(
                f"SLUICE_REST_TOKENS entry {i + 1}: expected ROLE:TOKEN with ROLE admin or read"
            )
        out.append(Credential(role, "bearer", token))
    return out


def load(path: str | None) -> RestAuth:
    """The credentials of ``--rest-auth`` / ``SLUICE_REST_AUTH`` and ``SLUICE_REST_TOKENS``."""
    path = path or os.environ.get("SLUICE_REST_AUTH") or None
    credentials = _parse_file(path) if path else []
    credentials += _parse_tokens(os.environ.get("SLUICE_REST_TOKENS", ""))
    return RestAuth(credentials)


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def listen_host(requested: str | None, auth: RestAuth) -> str:
    """Where the REST API listens: as asked; without credentials only on loopback."""
    if auth.enabled:
        return requested or "0.0.0.0"
    if requested is None or requested in LOOPBACK:
        return requested or "127.0.0.1"
    raise ConfigError(
        f"--rest-host {requested}: the REST API has no credentials configured, so anyone "
        f"reaching {requested} could submit jobs; give --rest-auth FILE (or SLUICE_REST_AUTH "
        "/ SLUICE_REST_TOKENS), or listen on 127.0.0.1"
    )


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """HTTPS for the REST API: ``--rest-tls-cert`` and ``--rest-tls-key`` (both or none)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("--rest-tls-cert and --rest-tls-key go together: give both")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"--rest-tls-cert {cert} / --rest-tls-key {key}: {e}") from None
    return ctx
