"""Talking to a viewer in tests: a server on a free port in a thread, and plain HTTP requests."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request


@contextlib.contextmanager
def serving(folder):
    from medtrinity.viewer.app import make_server, serve_in_thread

    server = make_server(folder, "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fetch(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    """(status, content type, body), also for error statuses."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def fetch_json(url: str):
    status, kind, body = fetch(url)
    assert kind == "application/json", (status, body[:200])
    return status, json.loads(body)
