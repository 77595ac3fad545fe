"""``python -m lakehouse_local.dashboard``: serve the local dashboard until Ctrl+C."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lakehouse_local.dashboard.server import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REFRESH_SECONDS, DashboardServer

DEFAULT_LAKEHOUSE = ".lakehouse/demo/lakehouse"

log = logging.getLogger("lakehouse_local.dashboard")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse_local.dashboard",
        description="Serve a dashboard over the local lakehouse's Gold tables, pipeline metrics and quarantine.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--lakehouse", default=DEFAULT_LAKEHOUSE, help="folder of the local Delta tables")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (0: any free port)")
    parser.add_argument(
        "--refresh-seconds", type=int, default=DEFAULT_REFRESH_SECONDS, help="page auto-refresh interval (0: off)"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.refresh_seconds < 0:
        print("error: --refresh-seconds must be 0 (off) or more", file=sys.stderr)
        return 2
    lakehouse = Path(args.lakehouse).expanduser().resolve()
    if not lakehouse.is_dir():
        log.warning(
            "%s does not exist yet: the page says 'no data yet' until a pipeline writes there "
            "(run `make demo` first, or pass the folder of an existing lakehouse with --lakehouse)",
            lakehouse,
        )
    try:
        server = DashboardServer(lakehouse, host=args.host, port=args.port, refresh_seconds=args.refresh_seconds)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port} ({exc.strerror}); pick another with --port", file=sys.stderr)
        return 1
    print(f"dashboard of {lakehouse}: {server.url}  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
