"""Build the browser app (scripts/build_web.py) and serve web/ on 127.0.0.1 with the
cross-origin isolation headers (COOP/COEP) that SharedArrayBuffer and threads need.

    python scripts/serve.py [--port 8000] [--no-build] [--no-model]

Prints the URL, serves until Ctrl-C.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WEB = ROOT / "web"

EXTRA_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
               ".whl": "application/zip", ".gguf": "application/octet-stream", ".json": "application/json",
               ".zip": "application/zip"}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **EXTRA_TYPES}

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, fmt: str, *args) -> None:  # quiet unless asked
        if getattr(self.server, "verbose", False):
            super().log_message(fmt, *args)


def make_server(port: int = 8000, directory: Path = WEB, verbose: bool = False) -> http.server.ThreadingHTTPServer:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=str(directory)))
    httpd.daemon_threads = True
    httpd.verbose = verbose  # type: ignore[attr-defined]
    return httpd


def serve_in_thread(port: int = 0, directory: Path = WEB) -> tuple[http.server.ThreadingHTTPServer, str]:
    """For tests: a server on an ephemeral port, running in a daemon thread."""
    httpd = make_server(port, directory)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--no-build", action="store_true", help="serve web/ as it is")
    ap.add_argument("--no-model", action="store_true", help="do not bundle the default model")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = ap.parse_args()
    if not args.no_build:
        from scripts.build_web import build_site
        print("building the browser app (engine, wheels, Pyodide, default model)…", flush=True)
        build_site(with_model=not args.no_model)
    httpd = make_server(args.port, WEB, args.verbose)
    print(f"serving {WEB} at http://127.0.0.1:{httpd.server_address[1]}/  (Ctrl-C to stop)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
