"""The viewer's HTTP server: server-rendered pages, JSON, images; GET only — it never writes to the build.

Routes:
  /                          gallery (filters, search and paging in the URL)
  /record/ID                 one record (the gallery's filters carried along for previous / next)
  /quarantine                quarantined inputs by stage and reason, the manifest's per-source table, and how
                             often the sources' own captions (MedTrinity-25M's) contradict their records
  /image/ID                  the stored image bytes, untouched
  /overlay/ID.png            the image with ROIs drawn (?hide=0,2&masks=0&boxes=0&labels=0)
  /thumb/ID.png              a thumbnail with ROI outlines
  /api/records, /api/facets, /api/record/ID, /api/quarantine    the same as JSON
"""

from __future__ import annotations

import json
import mimetypes
import threading
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from medtrinity.errors import UserError
from medtrinity.viewer.build_folder import BuildFolder
from medtrinity.viewer.catalog import Catalog, Position
from medtrinity.viewer.filters import FACETS, Filters, page_size
from medtrinity.viewer.record_page import record_context
from medtrinity.viewer.render import OverlayOptions, render_overlay, render_thumbnail

PACKAGE = Path(__file__).parent
RENDER_CACHE = 1024  # overlays and thumbnails kept (PNG bytes)


class NotFound(Exception):
    pass


class Response:
    def __init__(self, body: bytes, content_type: str, status: int = 200, cache: bool = False) -> None:
        self.body, self.content_type, self.status, self.cache = body, content_type, status, cache


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=str).encode(), "application/json", status)


def _image_type(data: bytes) -> str:
    return "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png"


class ViewerApp:
    """Turns a GET path and query into a Response; shared by the server's threads."""

    def __init__(self, folder: BuildFolder) -> None:
        import jinja2

        self.folder = folder
        self.catalog = Catalog(folder)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(PACKAGE / "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.globals["build_name"] = folder.root.name
        self._overlay = lru_cache(maxsize=RENDER_CACHE)(self._render_overlay)
        self._thumbnail = lru_cache(maxsize=RENDER_CACHE)(self._render_thumbnail)

    # ------------------------------------------------------------------ dispatch
    def handle(self, raw_path: str) -> Response:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        params = parse_qs(split.query, keep_blank_values=True)
        wants_json = path.startswith("/api/")
        try:
            return self._route(path, params)
        except NotFound as missing:
            if wants_json:
                return _json({"error": str(missing)}, 404)
            return self._page("error.html", 404, message=str(missing))
        except UserError as err:  # a malformed parameter in the URL
            if wants_json:
                return _json({"error": str(err)}, 400)
            return self._page("error.html", 400, message=str(err))

    def _route(self, path: str, params: dict[str, list[str]]) -> Response:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return self.gallery(params)
        head, rest = parts[0], parts[1:]
        if head == "record" and len(rest) == 1:
            return self.record_page(rest[0], params)
        if head == "quarantine" and not rest:
            return self.quarantine_page(params)
        if head == "image" and len(rest) == 1:
            row = self._row(rest[0])
            return Response(row["image"]["bytes"], _image_type(row["image"]["bytes"]), cache=True)
        if head == "overlay" and len(rest) == 1 and rest[0].endswith(".png"):
            options = _overlay_options(params)
            return Response(self._overlay(rest[0].removesuffix(".png"), options), "image/png", cache=True)
        if head == "thumb" and len(rest) == 1 and rest[0].endswith(".png"):
            return Response(self._thumbnail(rest[0].removesuffix(".png")), "image/png", cache=True)
        if head == "static" and len(rest) == 1:
            return self._static(rest[0])
        if head == "api" and rest:
            return self._api(rest, params)
        raise NotFound(f"no page at {path}")

    def _api(self, rest: list[str], params: dict[str, list[str]]) -> Response:
        filters = Filters.from_params(params)
        if rest == ["records"]:
            page = self.catalog.page(filters, page_size(params), _one(params, "after"), _one(params, "before"))
            return _json(
                {
                    "matching": page.matching,
                    "records": page.records,
                    "next_after": page.next_after,
                    "prev_before": page.prev_before,
                    "filters": filters.params(),
                }
            )
        if rest == ["facets"]:
            return _json(self.catalog.facets(filters))
        if rest[0] == "record" and len(rest) == 2:
            row = self._row(rest[1])
            row["image"] = {
                "path": row["image"].get("path"),
                "url": f"/image/{row['id']}",
                "bytes": len(row["image"]["bytes"]),
            }
            return _json(row)
        if rest == ["quarantine"]:
            return _json(self._quarantine_summary())
        raise NotFound(f"no API at /api/{'/'.join(rest)}")

    # ------------------------------------------------------------------ pages
    def _page(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self.templates.get_template(template).render(**context)
        return Response(html.encode(), "text/html; charset=utf-8", status)

    def gallery(self, params: dict[str, list[str]]) -> Response:
        filters = Filters.from_params(params)
        size = page_size(params)
        page = self.catalog.page(filters, size, _one(params, "after"), _one(params, "before"))
        size_param = {"size": str(size)} if "size" in params else {}
        return self._page(
            "gallery.html",
            page=page,
            facets=self.catalog.facets(filters),
            filters=filters,
            facet_order=[f.key for f in FACETS],
            size_param=size_param,
        )

    def record_page(self, record_id: str, params: dict[str, list[str]]) -> Response:
        filters = Filters.from_params(params)
        position = self._locate(record_id)
        row = self.catalog.record(position)
        previous, following = self.catalog.neighbours(position, filters)
        return self._page("record.html", filters=filters, previous=previous, following=following, **record_context(row))

    def quarantine_page(self, params: dict[str, list[str]]) -> Response:
        stage = _one(params, "stage")
        size = page_size(params, default=200, largest=1000)
        rows = self.catalog.quarantine_rows(stage, size, _one(params, "after"))
        next_href = None
        if len(rows) == size:
            query = {"stage": stage, "after": rows[-1]["id"], "size": str(size) if "size" in params else None}
            next_href = "/quarantine?" + urlencode({k: v for k, v in query.items() if v})
        return self._page("quarantine.html", stage=stage, rows=rows, next_href=next_href, **self._quarantine_summary())

    def _quarantine_summary(self) -> dict[str, Any]:
        from medtrinity.report.reason_kinds import reason_kinds

        manifest = self.folder.manifest()
        kinds = reason_kinds(self.catalog.quarantine_reasons())
        return {
            "stages": [{"stage": s, "count": n} for s, n in self.catalog.quarantine_by_stage()],
            "reasons": [{"stage": k.stage, "reason": k.reason, "count": k.count} for k in kinds],
            "sources": (manifest or {}).get("sources"),
            "totals": (manifest or {}).get("totals"),
            "caption_audit": self.catalog.caption_audit(),
        }

    # ------------------------------------------------------------------ images
    def _locate(self, record_id: str) -> Position:
        position = self.catalog.locate(record_id)
        if position is None:
            raise NotFound(f"no record with id {record_id}")
        return position

    def _row(self, record_id: str) -> dict[str, Any]:
        return self.catalog.record(self._locate(record_id))

    def _render_overlay(self, record_id: str, options: OverlayOptions) -> bytes:
        row = self._row(record_id)
        return render_overlay(row["image"]["bytes"], row["rois"] or [], options)

    def _render_thumbnail(self, record_id: str) -> bytes:
        row = self._row(record_id)
        return render_thumbnail(row["image"]["bytes"], row["rois"] or [])

    def _static(self, name: str) -> Response:
        path = PACKAGE / "static" / name
        if Path(name).name != name or not path.is_file():
            raise NotFound(f"no static file {name}")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(path.read_bytes(), f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)


def _one(params: dict[str, list[str]], key: str) -> str | None:
    values = [v for v in params.get(key, []) if v]
    return values[-1] if values else None


def _overlay_options(params: dict[str, list[str]]) -> OverlayOptions:
    hidden = set()
    for part in ",".join(params.get("hide", [])).split(","):
        if part.strip():
            if not part.strip().isdigit():
                raise UserError(f"hide takes ROI numbers separated by commas, got {part!r}")
            hidden.add(int(part))
    flag = {key: _one(params, key) not in ("0", "false", "off") for key in ("masks", "boxes", "labels")}
    return OverlayOptions(hidden=frozenset(hidden), **flag)


class _Handler(BaseHTTPRequestHandler):
    app: ViewerApp  # set on the subclass made by make_server
    server_version = "medtrinity-view"

    def do_GET(self) -> None:
        response = self.app.handle(self.path)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        # The build is read-only while it is viewed: images may be kept by the browser for a while.
        self.send_header("Cache-Control", "max-age=3600" if response.cache else "no-cache")
        self.end_headers()
        self.wfile.write(response.body)

    def _read_only(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "the viewer only reads the build")

    do_POST = do_PUT = do_DELETE = do_PATCH = _read_only

    def log_message(self, format: str, *args) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):  # the browser left before the answer was sent
            pass


def make_server(folder: str | Path | BuildFolder, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server bound to host:port (port 0: any free port), not yet serving."""
    build = folder if isinstance(folder, BuildFolder) else BuildFolder.open(folder)
    handler = type("Handler", (_Handler,), {"app": ViewerApp(build)})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as err:
        import errno

        if err.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use; pass --port N for another") from None
        if err.errno in (errno.EADDRNOTAVAIL, -2, -3, -5):  # not an address of this machine, or no such host
            raise UserError(f"cannot listen on {host}: not an address of this machine") from None
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="medtrinity-view")
    thread.start()
    return thread
