"""A real nginx (Debian ``nginx``) in front of a botwire server: TLS terminator with a test CA
(trustme) and path-prefix reverse proxy, with short keep-alive limits.

Locations (on both the plain and the TLS port):

- ``/botwire/``: the SAFE prefix config. The upstream gets the client's raw request URI minus
  the prefix (a ``map`` on ``$request_uri``), never nginx's decoded and normalised ``$uri``, so
  ``a/../b`` and ``%2F`` in keys reach the server as sent. This is the config docs/server.md
  recommends.
- ``/norm/``: the COMMON BUT UNSAFE config, ``proxy_pass http://up/;`` (a URI part): nginx
  decodes the path, merges slashes and resolves ``..`` before passing it on, so
  ``get('a/../b')`` reaches key ``b``.

``keepalive_timeout 1s`` and ``keepalive_requests 3`` (nginx closes a client connection after 1 s
idle, and answers every 3rd request with ``Connection: close``) make connection reuse edges
frequent. ``ca_pem`` is the test CA's certificate (what ``SSL_CERT_FILE`` should point at).

Example::

    with running_server() as server, running_nginx(tmp_path, server.port) as nginx:
        m = Memory("ns", url=nginx.https_url + "/botwire")
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from support.proc import Daemon, serving, spawn
from support.server import free_port

__all__ = ["Nginx", "running_nginx"]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout {keepalive_timeout};
    keepalive_requests {keepalive_requests};
    client_max_body_size 64m;
    upstream botwire {{
        server 127.0.0.1:{upstream};
        keepalive 8;
    }}
    # The raw request URI without the /botwire prefix: never decoded, never normalised.
    map $request_uri $botwire_uri {{
        ~^/botwire(?<rest>/.*)$ $rest;
        default /;
    }}
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {dir}/server.pem;
        ssl_certificate_key {dir}/server.key;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        location /botwire/ {{
            proxy_pass http://botwire$botwire_uri;
        }}
        location /norm/ {{
            proxy_pass http://botwire/;
        }}
    }}
}}
"""


class Nginx(Daemon):
    """A running nginx: ``http_url``, ``https_url`` (``ca_pem`` trusts it), ``log()`` (error and
    access logs), ``access_log()`` (one line a request) and ``stop()``."""

    def __init__(
        self, proc: subprocess.Popen[bytes], directory: Path, http_port: int, https_port: int
    ) -> None:
        super().__init__(proc, directory / "error.log", directory / "access.log")
        self.dir = directory
        self.http_port = http_port
        self.https_port = https_port
        self.http_url = f"http://127.0.0.1:{http_port}"
        self.https_url = f"https://localhost:{https_port}"
        self.ca_pem = directory / "ca.pem"

    def access_log(self) -> list[str]:
        try:
            return (self.dir / "access.log").read_text("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return []


@contextlib.contextmanager
def running_nginx(
    directory: Path,
    upstream_port: int,
    *,
    keepalive_timeout: str = "1s",
    keepalive_requests: int = 3,
) -> Iterator[Nginx]:
    """Start nginx (foreground, one process) with a fresh test CA; always stopped on exit."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(directory / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    for extra in cert.cert_chain_pems[1:]:
        with open(directory / "server.pem", "ab") as f:
            f.write(extra.bytes())
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    http_port, https_port = free_port(), free_port()
    conf = directory / "nginx.conf"
    conf.write_text(
        _CONF.format(
            dir=directory,
            upstream=upstream_port,
            http_port=http_port,
            https_port=https_port,
            keepalive_timeout=keepalive_timeout,
            keepalive_requests=keepalive_requests,
        )
    )
    proc = spawn([NGINX, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")])
    nginx = Nginx(proc, directory, http_port, https_port)
    with serving(nginx, [http_port, https_port], "nginx") as running:
        yield running
