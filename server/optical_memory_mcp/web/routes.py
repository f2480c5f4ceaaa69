"""The web app: its routes, the stored images, login, forget behind a confirmation, and error pages.

`web_app(memory, token, host)` is the whole guarded ASGI app; `optical-memory web` serves it alone,
and `serve --http` serves it at `/` beside the MCP endpoint at `/mcp`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from optical_memory.errors import InvalidArgument, NotFound, OpticalMemoryError
from optical_memory.memory import Memory
from optical_memory_mcp.web.checks import page_id_arg, session_arg
from optical_memory_mcp.web.guard import SECURITY_HEADERS, ASGIApp, Guard, Keys
from optical_memory_mcp.web.html import attr_url, esc, layout, login_page, short_time, tier_badge
from optical_memory_mcp.web.stats import ArchiveFigures, TierCounts
from optical_memory_mcp.web.views import Views

__all__ = ["web_app"]

STATIC = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
HEADERS = {k.decode(): v.decode() for k, v in SECURITY_HEADERS}


def _html(text: str, status: int = 200) -> HTMLResponse:
    # archive content: never kept in a shared or on-disk cache
    return HTMLResponse(text, status, headers={**HEADERS, "cache-control": "no-store"})


def _error_page(exc: OpticalMemoryError) -> HTMLResponse:
    status = 404 if isinstance(exc, NotFound) else 400 if isinstance(exc, InvalidArgument) else 500
    title = {404: "Not found", 400: "Not valid", 500: "Could not do that"}[status]
    return _html(layout(title, f'<h1>{title}</h1><p class="error">{esc(exc)}</p>'), status)


def _page(render: Callable[[Request], str]) -> Callable[[Request], Response]:
    """A read-only HTML view; the facade's deliberate errors become pages that say what to do."""

    def endpoint(request: Request) -> Response:
        try:
            return _html(render(request))
        except OpticalMemoryError as exc:
            return _error_page(exc)

    return endpoint


def _safe_next(value: object) -> str:
    """Only a path on this server: never '//evil.example' or 'https://...'."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


class WebApp:
    def __init__(self, memory: Memory, keys: Keys) -> None:
        self.memory = memory
        self.keys = keys
        self.views = Views(memory, TierCounts(memory), ArchiveFigures(memory))

    def routes(self) -> list[Route]:
        v = self.views
        q = _query
        return [
            Route("/", _page(lambda r: v.sessions(_int(r, "start")))),
            Route("/session", _page(lambda r: v.session(q(r, "name"), q(r, "cursor")))),
            Route("/session/tiers.svg", self.tier_bar),
            Route("/page/{page_id}", _page(lambda r: v.page(r.path_params["page_id"]))),
            Route("/page/{page_id}/image", self.image),
            Route("/search", _page(lambda r: v.search(q(r, "q"), q(r, "session")))),
            Route("/fading", _page(lambda r: v.fading())),
            Route("/forget", _page(self.confirm_forget), methods=["GET"]),
            Route("/forget", self.forget, methods=["POST"]),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/static/{name}", self.static),
        ]

    # images -----------------------------------------------------------------------------------
    def image(self, request: Request) -> Response:
        """The stored bytes, untouched; `?download=1` names the file with its real extension."""
        try:
            page_id = page_id_arg(request.path_params["page_id"])
            info = self.memory.page_info(page_id)
            tag = f'"{info.id}-{info.tier_index}-{info.image_bytes}-{info.updated}"'
            headers = {**HEADERS, "cache-control": "private, no-cache", "etag": tag}
            download = "download" in request.query_params
            if download:
                headers["content-disposition"] = f'attachment; filename="{info.id}.{info.image_format}"'
            elif request.headers.get("if-none-match") == tag:
                return Response(status_code=304, headers=headers)
            page = self.memory.view_page(page_id)
        except OpticalMemoryError as exc:
            return _error_page(exc)
        return Response(page.data, media_type=page.mime_type, headers=headers)

    def tier_bar(self, request: Request) -> Response:
        try:
            body = self.views.tier_bar_svg(_query(request, "name") or "", "legend" in request.query_params)
        except OpticalMemoryError as exc:
            return _error_page(exc)
        # the address carries the session's page count and update time: unchanged, the bar is reusable
        return Response(body, media_type="image/svg+xml", headers={**HEADERS, "cache-control": "private, max-age=30"})

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("no such file", 404, media_type="text/plain")
        data = files("optical_memory_mcp.web").joinpath("static", name).read_bytes()
        return Response(data, media_type=STATIC[name], headers={**HEADERS, "cache-control": "no-cache"})

    # login ------------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return _html(login_page(_safe_next(request.query_params.get("next"))))
        form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
        token, target = form.get("token"), _safe_next(form.get("next"))
        if not isinstance(token, str) or not self.keys.token_ok(token):
            return _html(login_page(target, "That token is not this server's."), 401)
        port = request.url.port
        response = RedirectResponse(target, status_code=303, headers={"cache-control": "no-store"})
        response.headers.append("set-cookie", self.keys.login_cookie(port))
        return response

    # forget -----------------------------------------------------------------------------------
    def confirm_forget(self, request: Request) -> str:
        page, session = _query(request, "page"), _query(request, "session")
        if page is not None:
            info = self.memory.page_info(page_id_arg(page))
            what = (
                f"page <b>{esc(info.id)}</b> {tier_badge(info.tier, info.tier_index)} of session "
                f"<b>{esc(info.session)}</b> ({info.lines:,} lines, {esc(short_time(info.created))})"
            )
            field, value, back = "page", info.id, attr_url(f"/page/{info.id}")
        elif session is not None:
            info_s = self.views.session_info(session_arg(session))
            what = f"session <b>{esc(info_s.name)}</b> and all its {info_s.pages:,} pages"
            field, value, back = "session", info_s.name, attr_url("/session", name=info_s.name)
        else:
            raise InvalidArgument("forget needs ?page=ID or ?session=NAME")
        body = f"""<h1>Forget?</h1>
<p>This deletes {what} for good: images, records and search terms. It cannot be undone.</p>
<form class="forget" action="/forget" method="post">
<input type="hidden" name="csrf" value="{esc(self.keys.csrf_token())}">
<input type="hidden" name="{field}" value="{esc(value)}">
<button type="submit" name="confirm" value="yes" class="danger">Forget for good</button>
<a href="{back}">Keep it</a>
</form>"""
        return layout("Forget?", body)

    async def forget(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=8, max_part_size=4096)
        if not self.keys.check_csrf(form.get("csrf")):
            return _html(
                layout(
                    "Refused",
                    '<h1>Refused</h1><p class="error">The form is stale or not from this '
                    "site (no valid CSRF token): nothing was forgotten. Open the page again.</p>",
                ),
                403,
            )
        if form.get("confirm") != "yes":
            return _html(layout("Not confirmed", "<h1>Not confirmed</h1><p>Nothing was forgotten.</p>"), 400)
        page, session = form.get("page"), form.get("session")
        try:
            if isinstance(page, str):
                result = await run_in_threadpool(self.memory.forget, page_id=page_id_arg(page))
            elif isinstance(session, str):
                result = await run_in_threadpool(self.memory.forget, session=session_arg(session))
            else:
                raise InvalidArgument("forget needs a page or a session")
        except OpticalMemoryError as exc:
            return _error_page(exc)
        self.views.tier_counts.forget()
        self.views.figures.forget()
        gone = ", ".join(esc(p) for p in result.forgotten[:50]) + (" …" if len(result.forgotten) > 50 else "")
        sessions = "".join(f"<p>Session <b>{esc(s)}</b> is gone.</p>" for s in result.sessions_removed)
        body = f"""<h1>Forgotten</h1>
<p class="done">Forgot {len(result.forgotten):,} page(s): {gone}.</p>{sessions}
<p><a href="/">Back to the sessions</a></p>"""
        return _html(layout("Forgotten", body))


def _query(request: Request, name: str) -> str | None:
    return request.query_params.get(name)


def _int(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "0")
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidArgument(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def web_app(memory: Memory, token: str, host: str = "127.0.0.1") -> ASGIApp:
    """The guarded web app over `memory`: token, Origin and Host checked before any route runs."""
    keys = Keys(token)
    return Guard(Starlette(routes=WebApp(memory, keys).routes()), keys, login_page, host)
