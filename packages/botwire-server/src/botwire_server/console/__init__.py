"""The web console (issue 20): static files served at ``/console/``, no build step.

The console is plain ES modules and CSS shipped inside the wheel (``console/static/``). It is
a client of the public v1 API like any other: it sends the token the user pasted (kept in the
browser's ``sessionStorage``) as ``Authorization: Bearer``, so scopes and read-only tokens are
enforced by the same checks as for every client. The files themselves carry no data and need
no token.

Every answer here carries a strict Content-Security-Policy (scripts and styles from this
origin only, no inline code, ``connect-src 'self'``, ``frame-ancestors 'none'``),
``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-cache`` with a strong ``ETag``, so
browsers revalidate after an upgrade (a 304 costs one round trip, no body).

Example::

    from botwire_server.console import install_console
    install_console(app)          # GET /console -> /console/ -> index.html
"""

from ._router import CSP, install_console

__all__ = ["CSP", "install_console"]
