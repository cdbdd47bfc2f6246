"""``GET /metrics`` in Prometheus text format, from a daemon thread (standard library only).

``sluice run --metrics-port`` serves its run's snapshot; a worker (``coordinator/worker``) can
serve all of its jobs' snapshots with the same class, or mount :func:`render_prometheus`
(``coordinator.metrics``) in its own HTTP server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from coordinator.http_listen import listen_http
from coordinator.metrics import PROMETHEUS_CONTENT_TYPE, render_prometheus

log = logging.getLogger("sluice.metrics")

SnapshotSource = Callable[[], list[dict[str, Any]]]


class MetricsServer:
    """Serves ``/metrics`` (and ``/``) from ``snapshots()``, called once per scrape; it must
    be cheap and thread-safe (e.g. return the latest snapshot the runner stored)."""

    def __init__(self, snapshots: SnapshotSource, port: int, host: str = "0.0.0.0") -> None:
        self.snapshots = snapshots
        self.httpd = listen_http(host, port, _handler_for(self), "--metrics-port")
        self.port = int(self.httpd.server_address[1])
        self.host = host
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="sluice-metrics", daemon=True
        )

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics: http://%s:%d/metrics", self.host, self.port)
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_for(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics here")
                return
            body = render_prometheus(server.snapshots()).encode()
            self.send_response(200)
            self.send_header("Content-Type", PROMETHEUS_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one line per scrape would drown the job's own log

    return Handler
