"""Which way the bytes go: proxy settings from the environment and the TLS trust store (sans-I/O).

Both HTTP backends ask this module, once per store, so ``Memory`` and ``AsyncMemory`` take the
same network path:

- ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY``, upper or lower case (lower
  case wins), read as ``urllib.request`` reads them: a CGI process (``REQUEST_METHOD`` set)
  ignores upper-case ``HTTP_PROXY`` (httpoxy, CVE-2016-1000110); ``NO_PROXY`` is ``*`` or a comma
  list of host suffixes (``example.com`` and ``.example.com`` both cover ``api.example.com``),
  IP addresses, CIDR blocks (``10.0.0.0/8``, as curl) and ``host:port`` entries.
- An ``http://`` server through a proxy gets absolute-form requests (``GET http://host/...``);
  an ``https://`` server gets a ``CONNECT`` tunnel and TLS end to end. Proxies are ``http://``
  (``user:password@`` becomes ``Proxy-Authorization: Basic``).
- TLS trusts the system store plus ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set (as OpenSSL,
  httpx and requests do), and certifi's bundle when the system store is empty and certifi is
  installed.
"""

from __future__ import annotations

import os

from .._errors import InvalidArgument, TLSError, Unavailable
from .._record import record

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Proxy", "certificate_error", "env_proxies", "proxy_for", "ssl_context"]


@record
class Proxy:
    """An HTTP forward proxy: where to connect, and the ``Proxy-Authorization`` value if any."""

    url: str  # as configured, without credentials (for messages)
    host: str
    port: int
    authorization: str | None


def env_proxies(environ: Any = None) -> dict[str, str]:
    """``{"http": url, "https": url, "all": url, "no": hosts}`` as ``urllib.request`` builds it."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for name, value in env.items():  # pass 1: any case
        lower = name.lower()
        if value and lower.endswith("_proxy"):
            found[lower[:-6]] = value
    if "REQUEST_METHOD" in env:  # CGI: HTTP_PROXY may come from a client's "Proxy:" header
        found.pop("http", None)
    for name, value in env.items():  # pass 2: lower case wins (and an empty one unsets)
        if name.endswith("_proxy"):  # "_proxy" in lower case; the scheme part in any case
            scheme = name[:-6].lower()  # as urllib: Http_proxy counts as http_proxy here
            if value:
                found[scheme] = value
            else:
                found.pop(scheme, None)
    return found


def _is_ip(host: str) -> bool:
    import _socket

    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False


def bypass(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` says to reach ``host:port`` directly."""
    host = host.lower().strip("[]")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:  # CIDR block: only an IP literal host can be inside it
            if _is_ip(host):
                import ipaddress  # only for a CIDR entry: it costs a cold start ms

                try:
                    if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    pass
            continue
        name, entry_port = entry, None
        if entry.startswith("["):  # [::1]:8080
            name, _, rest = entry[1:].partition("]")
            entry_port = rest[1:] or None
        elif entry.count(":") == 1:  # host:port (an IPv6 literal has several colons)
            name, _, entry_port = entry.partition(":")
        if entry_port is not None and entry_port != str(port):
            continue
        name = name.lstrip(".")
        if host == name or (not _is_ip(host) and host.endswith("." + name)):
            return True
    return False


def proxy_for(tls: bool, host: str, port: int, environ: Any = None) -> Proxy | None:
    """The proxy for a server, from the environment, or ``None`` to connect directly."""
    proxies = env_proxies(environ)
    scheme = "https" if tls else "http"
    if not proxies.get(scheme):
        scheme = "all"
    raw = proxies.get(scheme)
    if not raw or bypass(host, port, proxies.get("no", "")):
        return None
    return parse_proxy(raw, f"{scheme.upper()}_PROXY")


def parse_proxy(raw: str, source: str = "HTTP_PROXY/HTTPS_PROXY/ALL_PROXY") -> Proxy:
    """``http://[user:password@]host[:port]`` (a bare ``host:port`` means ``http://``);
    ``source`` names the variable it came from, for messages (which never show a password)."""
    from .._config import shown_url

    text = raw.strip()
    shown = shown_url(text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    if scheme.lower() != "http":
        raise InvalidArgument(
            f"botwire: proxy {shown!r} (from {source}) uses {scheme}://; "
            "botwire speaks to http:// forward proxies only (CONNECT tunnels https through "
            "them). Use an http:// proxy URL, or add the server's host to NO_PROXY."
        )
    netloc = rest.split("/", 1)[0]
    authorization = None
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        import binascii  # only with proxy credentials

        user, _, password = userinfo.partition(":")
        pair = f"{_unquote(user)}:{_unquote(password)}".encode()
        authorization = "Basic " + binascii.b2a_base64(pair, newline=False).decode("ascii")
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not host or (port_text and not port_text.isdigit()):
        raise InvalidArgument(
            f"botwire: proxy URL {shown!r} (from {source}) is not "
            f"http://[user:password@]host[:port]; fix {source}."
        )
    port = int(port_text) if port_text else 80
    if not 0 < port <= 65535:  # connect() would raise a bare OverflowError (async: a group)
        raise InvalidArgument(
            f"botwire: proxy URL {shown!r} (from {source}) has port {port}; a port is 1 to "
            f"65535. Fix {source} (a forward proxy listens on e.g. 3128 or 8080)."
        )
    return Proxy(f"http://{hostport}", host, port, authorization)


def _unquote(text: str) -> str:
    """Percent-decoding of URL credentials (``p%40ss`` -> ``p@ss``), without urllib.parse."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode()
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw) and raw[i + 1 : i + 3].isalnum():
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


_contexts: dict[tuple[str | None, str | None], Any] = {}


def ssl_context() -> Any:
    """The client TLS context: system CAs, plus ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    context = _contexts.get((cafile, capath))
    if context is not None:
        return context
    import ssl  # only for https: it costs a cold start ~10 ms

    context = ssl.create_default_context()
    if cafile or capath:
        try:
            context.load_verify_locations(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(
                f"botwire: cannot load the CA certificates named by SSL_CERT_FILE={cafile!r} / "
                f"SSL_CERT_DIR={capath!r}: {exc}. Point them at a PEM bundle / a hashed "
                "directory of CA certificates, or unset them."
            ) from exc
    elif not context.cert_store_stats().get("x509_ca"):
        try:
            import certifi  # type: ignore[import-not-found,unused-ignore]

            context.load_verify_locations(cafile=certifi.where())
        except (ImportError, OSError):
            pass
    _contexts[(cafile, capath)] = context
    return context


def certificate_error(exc: BaseException, url: str, host: str) -> TLSError:
    """A :class:`TLSError` for a failed handshake: never retried, says how to fix it."""
    reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    return TLSError(
        f"botwire: TLS certificate check failed for {url} (host {host!r}): {reason}. The "
        "server's certificate is not trusted by this machine or does not name this host. If it "
        "is signed by a private CA, set SSL_CERT_FILE=/path/to/ca.pem (or SSL_CERT_DIR) for "
        "this process; if the host name differs, use the name the certificate was issued for "
        "in BOTWIRE_URL. This is not retried: retrying cannot fix it.",
    )


def tunnel_refused(proxy_url: str, authority: str, status: int) -> Unavailable | None:
    """The error for a proxy that answered ``CONNECT`` with ``status``, when retrying cannot
    help (authentication, access rules, a proxy that does not tunnel): raised at once, by the
    sync and the async client alike; ``None`` for a status worth retrying."""
    if status not in (407, 403, 400, 405):
        return None
    from .._config import shown_url  # loaded already by whoever made the proxy

    why = " (proxy authentication required: put user:password@ in the proxy URL)"
    return Unavailable(
        f"botwire: the proxy {shown_url(proxy_url)} (from HTTPS_PROXY/ALL_PROXY) refused to open "
        f"a tunnel to {authority}: HTTP {status}{why if status == 407 else ''}. Fix the proxy "
        "URL or its access rules, or add the host to NO_PROXY."
    )
