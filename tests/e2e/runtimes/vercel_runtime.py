"""A stand-in for Vercel's Python runtime: one process = one function instance.

Usage: ``python vercel_runtime.py API_FILE REQUESTS_JSON``

Like the real runtime for a ``BaseHTTPRequestHandler`` function (``vc_init.py`` in
vercel/vercel's ``packages/python``), it imports the file once, serves its ``handler`` class with
``http.server.ThreadingHTTPServer`` on a loopback port — so every request runs in a new
thread — and forwards each request to it over a real TCP connection. ``REQUESTS_JSON`` is a list of
``{"headers": {...}, "body": ...}``; the body is sent as JSON unless it is a string. Prints one
JSON line per request (``{"status", "body"}``) and a last line with the shared HTTP backend's
``connections_opened``.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from lambda_runtime import backend_stats


def main(api_file: str, requests_json: str) -> int:
    spec = importlib.util.spec_from_file_location("vercel_function", api_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the cold start
    server = ThreadingHTTPServer(("127.0.0.1", 0), module.handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    failed = 0
    try:
        for req in json.loads(requests_json):
            body = req.get("body")
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
            try:
                conn.request(
                    "POST",
                    "/api/chat",
                    body=data,
                    headers={"Content-Type": "application/json", **req["headers"]},
                )
                resp = conn.getresponse()
                raw = resp.read()
            finally:
                conn.close()
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = raw.decode("utf-8", "replace")
            failed += resp.status != 200
            print(json.dumps({"status": resp.status, "body": payload}), flush=True)
    finally:
        server.shutdown()
        server.server_close()
    print(json.dumps({"stats": backend_stats()}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
