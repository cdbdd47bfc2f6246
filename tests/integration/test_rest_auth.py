"""The REST API behind credentials (issue 18): bearer tokens and basic credentials with two
roles, HTTPS with a test CA, and a worker without credentials kept to 127.0.0.1. Refused
calls (401, 403) change nothing."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from testkit.tls import make_certificates
from testkit.wait import wait_until
from tests.integration.test_worker_support import REPO_ROOT, WorkerProc

pytestmark = pytest.mark.integration

ADMIN, READER = "admin-token-0123456789", "read-token-9876543210"


def call(url: str, method: str = "GET", body: Any = None, auth: str | None = None,
         context: ssl.SSLContext | None = None) -> tuple[int, Any]:  # fmt: skip
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode())  # fmt: skip
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def stream_job(name: str) -> dict[str, Any]:
    return {"job": {"name": name, "content": [{
        "reader": {"name": "streamreader", "parameter": {
            "column": [{"name": "id", "type": "id"}], "sliceRecordCount": 10}},
        "writer": {"name": "streamwriter", "parameter": {"print": False}}}],
        "setting": {"delivery": "at-least-once"}}}  # fmt: skip


def test_roles_decide_what_a_call_may_do(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    creds = tmp_path / "rest.auth"
    creds.write_text(f"# role scheme secret\nadmin bearer {ADMIN}\nread bearer {READER}\n"
                     "admin basic ops:s3cret\n")  # fmt: skip
    worker = WorkerProc(unique_name, kafka_bootstrap, tmp_path / "w.log",
                        rest=("--rest-auth", str(creds), "--rest-host", "127.0.0.1"))  # fmt: skip
    try:
        wait_until(lambda: _answers(worker.url + "/health", None), 40, "the worker")
        base, job = worker.url, stream_job(unique_name)
        admin, reader = f"Bearer {ADMIN}", f"Bearer {READER}"
        basic = "Basic " + base64.b64encode(b"ops:s3cret").decode()
        assert call(base + "/jobs")[0] == 401
        assert call(base + "/jobs", auth="Bearer wrong")[0] == 401
        assert call(base + "/jobs", auth="Basic " + base64.b64encode(b"ops:no").decode())[0] == 401
        assert call(base + "/jobs", "POST", job)[0] == 401
        assert call(base + "/jobs", "POST", job, reader)[0] == 403
        assert call(base + f"/jobs/{unique_name}/pause", "PUT", None, reader)[0] == 403
        assert call(base + "/validate", "PUT", job, reader)[0] == 200  # changes nothing
        assert call(base + "/jobs", auth=reader) == (200, [])  # refused calls made no job
        code, created = call(base + "/jobs", "POST", job, admin)
        assert code in (200, 201), created
        assert unique_name in call(base + "/jobs", auth=basic)[1]
        assert call(base + f"/jobs/{unique_name}", "DELETE", None, reader)[0] == 403
        assert unique_name in call(base + "/jobs", auth=reader)[1]
        assert ADMIN not in worker.output() and READER not in worker.output()
        assert "credentials required" in worker.output()
    finally:
        worker.kill()


def test_https_with_a_test_ca(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> None:
    ca = make_certificates(tmp_path / "tls")
    worker = WorkerProc(unique_name, kafka_bootstrap, tmp_path / "w.log", scheme="https",
                        rest=("--rest-host", "127.0.0.1", "--rest-tls-cert",
                              str(tmp_path / "tls" / "server.pem"), "--rest-tls-key",
                              str(tmp_path / "tls" / "server.key")))  # fmt: skip
    context = ssl.create_default_context(cafile=str(ca))
    try:
        wait_until(lambda: _answers(worker.url + "/health", context), 40, "the HTTPS API")
        assert call(worker.url + "/jobs", context=context) == (200, [])
        with pytest.raises(OSError):  # plain HTTP gets no answer
            call(worker.url.replace("https", "http") + "/jobs")
        assert call(worker.url + "/jobs", context=context) == (200, [])  # still serving
        assert "REST API on https://" in worker.output()
    finally:
        worker.kill()


def _answers(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        return call(url, context=context)[0] == 200
    except OSError:
        return False


def test_without_credentials_the_api_stays_on_loopback(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "worker", "--group", unique_name,
         "--bootstrap-servers", kafka_bootstrap, "--rest-host", "0.0.0.0", "--rest-port", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("SLUICE_REST")},
    )  # fmt: skip
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("sluice: error:")]
    assert len(errors) == 1 and "--rest-host 0.0.0.0" in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    worker = WorkerProc(unique_name, kafka_bootstrap, tmp_path / "w.log", rest=())
    try:
        wait_until(lambda: "REST API on" in worker.output(), 40, "the worker to listen")
        assert f"http://127.0.0.1:{worker.port} only: no REST credentials" in worker.output()
    finally:
        worker.kill()
