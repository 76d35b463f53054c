"""`medtrinity view DIR [--port N] [--host H]`."""

from __future__ import annotations

import sys


def add_view_command(sub) -> None:
    view = sub.add_parser(
        "view",
        help="browse a build in a local web viewer (ROI overlays, filters, search)",
        description="Serve a read-only web viewer over a build folder's Parquet shards.",
    )
    view.add_argument("dir", metavar="DIR", help="a build folder (the --out of `medtrinity build` or `demo`)")
    view.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free port)")
    view.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shares it on the network)",
    )


def run_view(args) -> int:
    from medtrinity.errors import UserError
    from medtrinity.viewer.app import make_server

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    server = make_server(args.dir, args.host, args.port)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    reach = (
        "this machine only"
        if host in ("127.0.0.1", "::1", "localhost")
        else "every machine that can reach this one: the records are visible to them"
    )
    print(
        f"medtrinity view: serving {args.dir} (read-only) at http://{shown}:{port}/ — listening on {host}, "
        f"{reach}; Ctrl-C to stop",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("medtrinity view: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
