"""The HTTP side of `python3 -m glupy.flow --http HOST:PORT`:

    /              the live page (flowweb.html), polling /api/live each second
    /chart.js      Chart.js, served from Debian's libjs-chart.js: no internet needed
    /api/live      JSON of flowlive.Live.snapshot(); ?after=T for points after T
    /metrics       Prometheus exposition (prometheus_client)
    /healthz       "ok"

It runs in its own threads beside the receiving loop, sharing one Live.
"""

import json
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from . import flowmetrics

PAGE = Path(__file__).with_name("flowweb.html")
# Debian's libjs-chart.js (3.x, MIT); the first one found is served.
CHART_JS = (Path("/usr/share/javascript/chart.js/chart.min.js"),
            Path("/usr/share/nodejs/chart.js/dist/chart.min.js"))


def find_chart_js():
    return next((path for path in CHART_JS if path.is_file()), None)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, live):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.live = live
        self.registry = flowmetrics.make_registry(live)
        self.page = PAGE.read_bytes()
        chart = find_chart_js()
        self.chart_js = chart.read_bytes() if chart else None

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        route = {"/": self._page, "/index.html": self._page, "/chart.js": self._chart_js,
                 "/api/live": self._live, "/metrics": self._metrics,
                 "/healthz": self._healthz}.get(url.path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        route(parse_qs(url.query))

    def _page(self, _query):
        self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")

    def _chart_js(self, _query):
        if self.server.chart_js is None:
            self._send(HTTPStatus.NOT_FOUND, b"// Chart.js missing: apt-get install libjs-chart.js\n",
                       "text/javascript")
            return
        self._send(HTTPStatus.OK, self.server.chart_js, "text/javascript", cache=True)

    def _live(self, query):
        try:
            after = float(query["after"][0]) if "after" in query else None
        except ValueError:
            self._send(HTTPStatus.BAD_REQUEST, b"after must be a number\n", "text/plain")
            return
        body = json.dumps(self.server.live.snapshot(after), separators=(",", ":")).encode()
        self._send(HTTPStatus.OK, body, "application/json")

    def _metrics(self, _query):
        self._send(HTTPStatus.OK, flowmetrics.exposition(self.server.registry),
                   CONTENT_TYPE_LATEST)

    def _healthz(self, _query):
        self._send(HTTPStatus.OK, b"ok\n", "text/plain")

    def _send(self, status, body, content_type, cache=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):  # no line per request on stderr
        pass


def start(address, live):
    """Serves in a background thread; returns the Server (server.shutdown() stops it)."""
    server = Server(address, live)
    threading.Thread(target=server.serve_forever, name="glupy-flow-http", daemon=True).start()
    return server
