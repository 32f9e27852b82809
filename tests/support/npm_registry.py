"""A read-only npm registry served from an npm cache directory (`~/.npm/_cacache`), for lab hosts that have no
route out: `python -m tests.support.npm_registry CACHE_DIR ADDRESS` listens on ADDRESS:<free port>, prints
`LISTENING <url>` and serves, until stdin closes, what the registry protocol needs:

- `GET /<name>` (`@scope%2fname` for scoped names): the packument npm cached from the upstream registry, its
  `dist.tarball` URLs pointing here instead;
- `GET /<name>/-/<file>.tgz`: the tarball, byte for byte as upstream served it (so its `dist.integrity` holds).

Anything the cache does not hold is a 404, as upstream says for a package that does not exist. Every request is
logged on stderr as `GET <path> <status>`, so a test can prove the hosts really fetched from here.
"""

from __future__ import annotations

import base64
import http.server
import json
import sys
import threading
from pathlib import Path

UPSTREAM = "https://registry.npmjs.org/"
KEY_PREFIX = "make-fetch-happen:request-cache:"


def cache_index(cache: Path) -> dict[str, Path]:
    """URL -> content file, from cacache's index (the last entry of a key wins; a null integrity deletes it)."""
    out: dict[str, Path] = {}
    for bucket in sorted((cache / "index-v5").rglob("*")):
        if not bucket.is_file():
            continue
        for line in bucket.read_text(encoding="utf-8", errors="replace").splitlines():
            _, _, doc = line.partition("\t")
            try:
                entry = json.loads(doc)
            except ValueError:
                continue
            key = entry.get("key", "")
            if not key.startswith(KEY_PREFIX + UPSTREAM):
                continue
            url = key[len(KEY_PREFIX):]
            integrity = entry.get("integrity")
            if not integrity:
                out.pop(url, None)
                continue
            algo, _, b64 = integrity.split()[0].partition("-")
            hexd = base64.b64decode(b64).hex()
            path = cache / "content-v2" / algo / hexd[:2] / hexd[2:4] / hexd[4:]
            if path.is_file():
                out[url] = path
    return out


def serve(cache: Path, address: str) -> None:
    index = cache_index(cache)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            path = index.get(UPSTREAM + self.path.lstrip("/"))
            code = 200 if path else 404
            body = path.read_bytes() if path else b'{"error":"Not found"}'
            tarball = self.path.endswith(".tgz")
            if path and not tarball:
                body = body.replace(UPSTREAM.encode(), f"http://{self.headers['Host']}/".encode())
            self.send_response(code)
            self.send_header("Content-Type", "application/octet-stream" if tarball else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            print(f"GET {self.path} {code}", file=sys.stderr, flush=True)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer((address, 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"LISTENING http://{address}:{srv.server_address[1]}/ {len(index)} urls", flush=True)
    sys.stdin.read()  # the test closes it (or dies): then this ends too
    srv.shutdown()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), sys.argv[2])
