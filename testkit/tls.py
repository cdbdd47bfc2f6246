"""Certificates for TLS tests, made with the openssl command line."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path


def make_certificates(folder: Path, server_user: str | None = None) -> Path:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it, in ``folder``
    (``ca.pem``, ``server.pem``, ``server.key``, mode 0600, owned by ``server_user`` when
    running as root: PostgreSQL refuses a key others can read). Returns the CA certificate."""
    folder.mkdir(mode=0o755)
    req = ["openssl", "req", "-newkey", "rsa:2048", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(args, cwd=folder, check=True, capture_output=True)

    run(*req, "-x509", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=sluice test CA")  # fmt: skip
    run(*req, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")  # fmt: skip
    (folder / "server.key").chmod(0o600)
    if server_user is not None and os.geteuid() == 0:
        user = pwd.getpwnam(server_user)
        for name in ("server.key", "server.pem"):
            os.chown(folder / name, user.pw_uid, user.pw_gid)
    return folder / "ca.pem"
