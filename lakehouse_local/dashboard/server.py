"""The dashboard's HTTP server (standard library only): the pages (``/``, ``/users``), ``/api/summary.json`` and
``/healthz``.

Every request reads the tables afresh (a snapshot of each Delta table at that moment), so the page
follows a running pipeline without a restart.

Query parameters of ``/``: ``day=YYYY-MM-DD`` (funnel and traffic day; default the latest),
``refresh=<seconds>`` (meta refresh, 0 turns it off) and ``hours=<1-48>`` (events-per-minute window).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lakehouse_local.dashboard.data import DEFAULT_WINDOW_HOURS, load_snapshot
from lakehouse_local.dashboard.model_data import load_users_snapshot
from lakehouse_local.dashboard.render import render_error, render_page
from lakehouse_local.dashboard.users_page import render_users_page

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
DEFAULT_REFRESH_SECONDS = 30
MAX_WINDOW_HOURS = 48


class BadRequestError(ValueError):
    """A query parameter that cannot be used; the message names it and what it accepts."""


class DashboardServer(ThreadingHTTPServer):
    """Serves the dashboard of the lakehouse folder ``lakehouse``.

    ``port=0`` picks a free port; :attr:`url` tells which. Use :meth:`start` for a background thread
    (tests) or :meth:`serve_forever` (the CLI).
    """

    daemon_threads = True

    def __init__(
        self,
        lakehouse: str | Path,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        refresh_seconds: int = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        self.lakehouse = Path(lakehouse).expanduser().resolve()
        self.refresh_seconds = refresh_seconds
        self._thread: threading.Thread | None = None
        super().__init__((host, port), DashboardRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> DashboardServer:
        """Serve in a daemon thread and return at once."""
        self._thread = threading.Thread(target=self.serve_forever, name="dashboard", daemon=True)
        self._thread.start()
        log.info("dashboard of %s on %s", self.lakehouse, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class DashboardRequestHandler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "ClickstreamDashboard/1.0"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._respond(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s %s", self.address_string(), format % args)

    def _respond(self, *, send_body: bool) -> None:
        url = urlsplit(self.path)
        try:
            params = parse_qs(url.query, keep_blank_values=True)
            if url.path in ("/", "/index.html"):
                refresh = _int_param(params, "refresh", self.server.refresh_seconds, low=0, high=86_400)
                hours = _int_param(params, "hours", DEFAULT_WINDOW_HOURS, low=1, high=MAX_WINDOW_HOURS)
                snapshot = load_snapshot(self.server.lakehouse, day=_day_param(params), hours=hours)
                explicit_hours = hours if "hours" in params else None
                body = render_page(snapshot, refresh_seconds=refresh, hours=explicit_hours)
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", body, send_body)
            elif url.path == "/users":
                refresh = _int_param(params, "refresh", self.server.refresh_seconds, low=0, high=86_400)
                snapshot = load_users_snapshot(self.server.lakehouse, now=datetime.now(UTC))
                body = render_users_page(snapshot, refresh_seconds=refresh)
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", body, send_body)
            elif url.path == "/api/summary.json":
                snapshot = load_snapshot(self.server.lakehouse)
                self._send(HTTPStatus.OK, "application/json", json.dumps(snapshot.summary(), indent=2), send_body)
            elif url.path == "/healthz":
                self._send(HTTPStatus.OK, "text/plain; charset=utf-8", "ok\n", send_body)
            else:
                message = f"no page at {url.path}: the dashboard is at / and /users, its figures at /api/summary.json"
                self._send(HTTPStatus.NOT_FOUND, "text/html; charset=utf-8", render_error(message), send_body)
        except BadRequestError as exc:
            self._send(HTTPStatus.BAD_REQUEST, "text/html; charset=utf-8", render_error(str(exc)), send_body)
        except Exception:
            log.exception("dashboard request %s failed", self.path)
            message = "the dashboard could not read the lakehouse; see the server's log for the error"
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/html; charset=utf-8", render_error(message), send_body)

    def _send(self, status: HTTPStatus, content_type: str, body: str, send_body: bool) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(data)


def _int_param(params: dict[str, list[str]], name: str, default: int, *, low: int, high: int) -> int:
    if name not in params:
        return default
    text = params[name][-1]
    try:
        value = int(text)
    except ValueError:
        raise BadRequestError(f"query parameter {name}={text!r} is not a whole number ({low} to {high})") from None
    if not low <= value <= high:
        raise BadRequestError(f"query parameter {name}={value} is out of range: use {low} to {high}")
    return value


def _day_param(params: dict[str, list[str]]) -> date | None:
    if "day" not in params or not params["day"][-1]:
        return None
    text = params["day"][-1]
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequestError(f"query parameter day={text!r} is not a date: use YYYY-MM-DD") from None
