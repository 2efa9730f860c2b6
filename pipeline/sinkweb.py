"""The sink's HTTP endpoints (stdlib, one daemon thread): ``/metrics``, ``/livez``, ``/readyz``.

``/metrics`` is the Prometheus text of a ``pipeline.metrics.Metrics``;
``/livez`` answers 200 while the process serves; ``/readyz`` answers 200 when
the ``ready`` callable says so (the sink: partitions assigned), else 503.
Wiring into ``run_sink`` (after the consumer is created, and in ``finally``)::

    web = start_sink_web(settings, metrics, ready=lambda: bool(consumer.assignment()))
    ...
    if web is not None:
        web.close()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from pipeline.metrics import Metrics
from pipeline.settings import Settings

log = logging.getLogger("distillwatch.sinkweb")


class SinkWeb:
    """A running HTTP server; ``port`` is the bound port (useful with port 0), ``close`` stops it."""

    def __init__(
        self, metrics: Metrics, ready: Callable[[], bool], host: str = "0.0.0.0", port: int = 0
    ) -> None:
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, web.metrics.render(), "text/plain; version=0.0.4")
                elif path == "/livez":
                    self._send(200, orjson.dumps({"status": "ok"}), "application/json")
                elif path == "/readyz":
                    ok = web.is_ready()
                    self._send(200 if ok else 503, orjson.dumps({"ready": ok}), "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - scrapes are not news
                pass

        self.metrics = metrics
        self._ready = ready
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="sink-web", daemon=True)
        self._thread.start()

    def is_ready(self) -> bool:
        """The readiness callable's answer (False if it raises)."""
        try:
            return bool(self._ready())
        except Exception:  # noqa: BLE001 - a probe must answer, not crash
            return False

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


def start_sink_web(settings: Settings, metrics: Metrics, ready: Callable[[], bool]) -> SinkWeb | None:
    """Serve the sink's endpoints on ``settings.sink_web_port``; None (logged) if the port is taken."""
    try:
        return SinkWeb(metrics, ready, port=settings.sink_web_port)
    except OSError as exc:
        log.error("sink web endpoints not started on port %d: %s", settings.sink_web_port, exc.strerror)
        return None
