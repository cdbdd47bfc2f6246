"""The REST API every worker serves, shaped like Kafka Connect's (``/connectors`` →
``/jobs``). All state is in Kafka, so any worker answers any request.

    GET    /health                      this worker: UP, its slots and tasks
    GET    /jobs                        job names
    POST   /jobs                        create (body: FlinkX job JSON, or {"config": job})
    GET    /jobs/{name}                 config record (config, state, version, run, slots)
    PUT    /jobs/{name}[/config]        create or update the config
    DELETE /jobs/{name}                 delete
    GET    /jobs/{name}/status          state, each task's state / owner / last checkpoint
    PUT    /jobs/{name}/pause|resume|stop|restart
    GET    /jobs/{name}/offsets         source positions and the writer group's offsets
    PATCH  /jobs/{name}/offsets         {"sources": {"reader-0": {"position": {...}}}}
    DELETE /jobs/{name}/offsets         reset source positions (stopped job)
    PUT    /jobs/{name}/replay          {"to_checkpoint": K} | {"to_timestamp": ms} |
                                        {"to_offsets": "topic:partition:offset,..."}
    PUT    /validate                    the errors ``sluice validate`` reports

Errors: a 4xx/5xx status with ``{"error": message, "field": JSON path or parameter}``.
"""

from __future__ import annotations

import json
import logging
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

from coordinator.errors import ConfigError, ConnectError, SluiceError
from coordinator.http_listen import listen_http
from coordinator.job.jsonc import parse_jsonc
from coordinator.job.problems import JobConfigError
from coordinator.job.secrets import REFERENCE
from coordinator.worker import jobs, replay
from coordinator.worker.rest_auth import RestAuth

log = logging.getLogger("sluice.rest")

_STATE_ACTIONS = {
    "pause": ("paused", False),
    "resume": ("running", False),
    "stop": ("stopped", False),
    "restart": ("running", True),
}


class Api:
    """Routing and the operations, without HTTP (so unit tests can call :meth:`handle`)."""

    def __init__(self, bootstrap: str, group: str, health: Any = None) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self._health = health

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = [unquote(p) for p in urlparse(path).path.strip("/").split("/") if p]
        b = self.bootstrap
        if parts == ["health"] and method == "GET":
            health = self._health() if self._health else {"status": "UP"}
            # DOWN (its group join fails) answers 503, so a health check sees it too.
            return (503 if health.get("status") == "DOWN" else 200), health
        if parts == ["validate"] and method == "PUT":
            result = jobs.validate(body)
            return (200 if result["valid"] else 400), result
        if parts == ["jobs"]:
            if method == "GET":
                return 200, sorted(
                    n for n, r in jobs.all_configs(b).items() if r.get("group") == self.group
                )
            if method == "POST":
                return 201, _public(jobs.create_job(b, self.group, body))
        if len(parts) >= 2 and parts[0] == "jobs":
            name, rest = parts[1], parts[2:]
            if not rest or rest == ["config"]:
                if method == "GET":
                    rec = jobs.get_config(b, name)
                    return 200, (rec["config"] if rest else _public(rec))
                if method == "PUT":
                    rec, created = jobs.update_job(b, self.group, name, body)
                    return (201 if created else 200), _public(rec)
                if method == "DELETE" and not rest:
                    jobs.delete_job(b, name)
                    return 204, None
            if rest == ["status"] and method == "GET":
                return 200, jobs.job_status(b, name)
            if len(rest) == 1 and rest[0] in _STATE_ACTIONS and method == "PUT":
                state, restart = _STATE_ACTIONS[rest[0]]
                return 202, _public(jobs.set_state(b, name, state, restart=restart))
            if rest == ["offsets"]:
                if method == "GET":
                    return 200, replay.get_offsets(b, name)
                if method == "PATCH":
                    return 200, replay.patch_offsets(b, name, body)
                if method == "DELETE":
                    return 200, replay.reset_offsets(b, name)
            if rest == ["replay"] and method == "PUT":
                return 200, _replay(b, name, body)
        raise jobs.ApiError(f"no route {method} {path}", 404 if method == "GET" else 405, "path")


def _replay(bootstrap: str, name: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise jobs.ApiError("body must be a JSON object", 400, "body")
    known = {"to_checkpoint", "to_timestamp", "to_offsets", "force"}
    for key in body:
        if key not in known:
            raise jobs.ApiError(f"{key}: unknown key (expected {sorted(known)})", 400, key)
    for key, kind in (("to_checkpoint", int), ("to_timestamp", int), ("to_offsets", str)):
        if key in body and not isinstance(body[key], kind):
            raise jobs.ApiError(f"{key}: expected {kind.__name__}", 400, key)
    return replay.replay(
        bootstrap,
        name,
        to_checkpoint=body.get("to_checkpoint"),
        to_timestamp=body.get("to_timestamp"),
        to_offsets=body.get("to_offsets"),
        force=bool(body.get("force", False)),
    )


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    """A config record as the API shows it: passwords masked, unless given by reference
    (``${env:…}``: the reference is no secret, and says where the value comes from)."""
    out = dict(rec)
    out["config"] = _mask(rec.get("config"))
    return out


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: "******"
            if "password" in k.lower() and isinstance(v, str) and not REFERENCE.fullmatch(v)
            else _mask(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_mask(v) for v in node]
    return node


def error_response(e: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(e, jobs.ApiError):
        return e.status, {"error": str(e), "field": e.field}
    if isinstance(e, ConfigError):
        return 400, {"error": str(e), "field": None}
    if isinstance(e, ConnectError):
        return 503, {"error": str(e), "field": None}
    if isinstance(e, SluiceError):
        return 409, {"error": str(e), "field": None}
    log.error("REST request failed:\n%s", traceback.format_exc())
    return 500, {"error": f"{type(e).__name__}: {e}", "field": None}


def _parse_body(raw: bytes) -> Any:
    """The request body as JSON (None when empty). Parsed like a job file, so a body nested
    too deeply is a 400 naming the limit, not a ``RecursionError``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise jobs.ApiError(f"body is not UTF-8 (byte {e.start})", 400, "body") from None
    if not text.strip():
        return None
    try:
        return parse_jsonc(text, "body")
    except JobConfigError as e:
        raise jobs.ApiError(str(e), 400, "body") from None


class _Handler(BaseHTTPRequestHandler):
    api: Api
    auth: RestAuth

    def _do(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = [unquote(p) for p in urlparse(self.path).path.strip("/").split("/") if p]
        allowed = self.auth.decide(self.command, parts, self.headers.get("Authorization"))
        if allowed == 401:
            status, payload = 401, {"error": "authentication required: a bearer token or "
                                    "basic credentials (Authorization header)"}  # fmt: skip
        elif allowed == 403:
            status, payload = 403, {"error": f"{self.command} /{'/'.join(parts)} needs the "
                                    "admin role; these credentials are read-only"}  # fmt: skip
        else:
            try:
                body = _parse_body(raw)
                status, payload = self.api.handle(self.command, self.path, body)
            except Exception as e:  # noqa: BLE001 - every failure becomes a JSON answer
                status, payload = error_response(e)
        data = b"" if payload is None else json.dumps(payload, default=str).encode()
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="sluice", Basic realm="sluice"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _do

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        log.debug("%s " + format, self.address_string(), *args)


def serve(
    worker: Any, host: str, port: int, auth: RestAuth | None = None, tls: Any = None
) -> ThreadingHTTPServer:
    """The API on ``host:port``, behind ``auth`` (none: open), over HTTPS with ``tls``."""
    handler = type(
        "Handler",
        (_Handler,),
        {"api": Api(worker.bootstrap, worker.group, worker.health), "auth": auth or RestAuth([])},
    )
    server = listen_http(host, port, handler, "--rest-port")
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    return server
