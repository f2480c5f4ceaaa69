"""The web page's guard: the same token, Origin and Host rules as `serve --http`, made fit for a browser.

* ``Host`` must name this machine (or the address it was bound to): a page on another site that
  rebinds its DNS name to 127.0.0.1 is refused (421).
* A request whose ``Origin`` is not this server's own origin is refused (403), whatever it carries.
* Every page but the login form and the static files needs the token: ``Authorization: Bearer
  <token>`` (scripts), or the login cookie. The token is given once, on the login form or as
  ``?token=`` (which is exchanged for the cookie and dropped from the address by a redirect); the
  cookie is HttpOnly and SameSite=Strict and holds a keyed hash of the token, never the token itself,
  so it opens these pages only, not the MCP endpoint.
* Every form that changes something carries a CSRF token bound to the login cookie
  (`Guard.csrf_token`); `Guard.check_csrf` is called by those handlers before anything is changed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["CSP", "LOCAL_HOSTS", "SECURITY_HEADERS", "Guard", "Keys", "cookie_name"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
# Sent with every page: no framing, no sniffing, no referrer, and only this server's own files run.
CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: under no-referrer a browser's own form posts carry "Origin: null"
    (b"referrer-policy", b"same-origin"),
]
PUBLIC_PATHS = ("/login", "/static/")  # the login form and its CSS: no token yet, nothing to protect
WILDCARD_BINDS = ("0.0.0.0", "::", "")


def cookie_name(port: int | None) -> str:
    # Cookies ignore ports: two servers on one machine would overwrite each other's without the port.
    return f"optical_memory_{port}" if port else "optical_memory"


def _host_name(host_header: str) -> str:
    """'127.0.0.1:8765' -> '127.0.0.1'; '[::1]:80' -> '[::1]'."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Keys:
    """The token, and what is derived from it: the login cookie's value and the CSRF token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._cookie_value = hmac.new(self._token, b"optical-memory web login", hashlib.sha256).hexdigest()
        self._csrf_key = hmac.new(self._token, b"optical-memory web csrf", hashlib.sha256).digest()

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def csrf_token(self) -> str:
        """The CSRF token of every form: a keyed hash of the login cookie (stable while the token is)."""
        return hmac.new(self._csrf_key, self._cookie_value.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, given: object) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.csrf_token().encode())

    def login_cookie(self, port: int | None) -> str:
        """The Set-Cookie header value that logs this browser in."""
        return f"{cookie_name(port)}={self._cookie_value}; Path=/; HttpOnly; SameSite=Strict"

    def authorized(self, headers: dict[bytes, bytes], port: int | None) -> bool:
        bearer = headers.get(b"authorization", b"")
        if hmac.compare_digest(bearer, b"Bearer " + self._token):
            return True
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:  # a malformed Cookie header is no login, not a crash
            return False
        morsel = cookies.get(cookie_name(port))
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self._cookie_value.encode())


class Guard:
    """ASGI middleware in front of the web app: Host, Origin, then the token."""

    def __init__(
        self, app: ASGIApp, keys: Keys, login_page: Callable[[str, str], str], bind_host: str = "127.0.0.1"
    ) -> None:
        self.app = app
        self.keys = keys
        self.login_page = login_page  # (next address, message) -> the login form's HTML
        self.allowed_hosts = set(LOCAL_HOSTS)
        if bind_host not in WILDCARD_BINDS:
            self.allowed_hosts.add(bind_host)

    @staticmethod
    def _origin_ok(headers: dict[bytes, bytes], host_header: str) -> bool:
        origin = headers.get(b"origin")
        if origin is None:
            return True  # navigations and non-browser clients send none; a browser's cross-site POST does
        return origin.decode("latin-1") == f"http://{host_header}"

    # the middleware -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host_header = headers.get(b"host", b"").decode("latin-1")
        port = (scope.get("server") or (None, None))[1]
        if _host_name(host_header) not in self.allowed_hosts:
            await _plain(send, 421, f"Host {host_header!r} is not this machine: open http://127.0.0.1:{port}/")
            return
        if not self._origin_ok(headers, host_header):
            await _plain(send, 403, "requests from another site are refused")
            return
        path = scope.get("path", "")
        if path.startswith(PUBLIC_PATHS):
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if "token" in query and scope.get("method") == "GET":
            await self._exchange_token(scope, send, query, port)
            return
        if not self.keys.authorized(headers, port):
            await self._refuse(scope, send)
            return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, message: str = "") -> None:
        """401: the login form for a browser (it comes back to this address), a reason for a script."""
        path = scope.get("path", "/")
        query = scope.get("query_string", b"").decode("latin-1")
        body = self.login_page(path + (f"?{query}" if query else ""), message).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"www-authenticate", b"Bearer"),
                    (b"cache-control", b"no-store"),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _exchange_token(self, scope: Scope, send: Send, query: dict[str, str], port: int | None) -> None:
        """`?token=` once: set the cookie and redirect to the same address without the token."""
        if not self.keys.token_ok(query.pop("token")):
            await self._refuse(scope, send, "That token is not this server's.")
            return
        target = scope.get("path", "/") + (f"?{urlencode(query)}" if query else "")
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", target.encode("latin-1", "replace")),
                    (b"set-cookie", self.keys.login_cookie(port).encode()),
                    (b"cache-control", b"no-store"),
                    (b"referrer-policy", b"no-referrer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


async def _plain(send: Send, status: int, message: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": message.encode()})
