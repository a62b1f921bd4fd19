"""Build the browser app (scripts/build_web.py) and serve web/ on 127.0.0.1 with the
cross-origin isolation headers (COOP/COEP) that SharedArrayBuffer and threads need.

    python scripts/serve.py [--port 8000] [--no-build] [--no-model]

Prints the URL, serves until Ctrl-C.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
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
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    # HTTP Range (one "bytes=start-[end]" range): the model store resumes a cut-off download
    # with it (web/model_store.js); SimpleHTTPRequestHandler serves whole files only.
    def send_head(self):
        self._range = None
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", (self.headers.get("Range") or "").strip())
        path = self.translate_path(self.path)
        if match is None or not os.path.isfile(path):
            return super().send_head()
        f = open(path, "rb")
        size = os.fstat(f.fileno()).st_size
        start = int(match[1])
        end = min(int(match[2]) if match[2] else size - 1, size - 1)
        if start > end:
            f.close()
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Last-Modified", self.date_time_string(int(os.fstat(f.fileno()).st_mtime)))
        self.end_headers()
        f.seek(start)
        self._range = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:
        if getattr(self, "_range", None) is None:
            return super().copyfile(source, outputfile)
        left = self._range
        while left > 0:
            block = source.read(min(left, 1 << 16))
            if not block:
                break
            outputfile.write(block)
            left -= len(block)

    def log_message(self, fmt: str, *args) -> None:  # quiet unless asked
        if getattr(self.server, "verbose", False):
            super().log_message(fmt, *args)


def make_server(port: int = 8000, directory: Path = WEB, verbose: bool = False,
                handler: type[Handler] = Handler) -> http.server.ThreadingHTTPServer:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(directory)))
    httpd.daemon_threads = True
    httpd.verbose = verbose  # type: ignore[attr-defined]
    return httpd


def serve_in_thread(port: int = 0, directory: Path = WEB,
                    handler: type[Handler] = Handler) -> tuple[http.server.ThreadingHTTPServer, str]:
    """For tests: a server on an ephemeral port, running in a daemon thread."""
    httpd = make_server(port, directory, handler=handler)
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
