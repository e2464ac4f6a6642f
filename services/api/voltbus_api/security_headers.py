"""Security headers on every response: page, API, docs, errors, the live stream (issue 15).

The web page (static/index.html, app.js) and the docs page (docs_page.py) load scripts and
styles only from this origin and have no inline script, so the policy is 'self' throughout.
Swagger UI shows its icons as data: images, hence `img-src 'self' data:`. Nothing here may be
framed (clickjacking of the command buttons). A pure ASGI middleware, not BaseHTTPMiddleware,
so the Server-Sent Events stream is passed through untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)
API_PREFIX = "/api/v1/"


class SecurityHeaders:
    """Add HEADERS to every HTTP response (a route's own value wins), no-store under /api/v1/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = HEADERS
        if scope["path"].startswith(API_PREFIX):  # answers hold state and tokens: never cached
            extra = (*extra, (b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
