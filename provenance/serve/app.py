"""The desk's ASGI app (Starlette): the JSON API under /api, the pages for people, static files.

Every route but /login and /static needs a live token: `Authorization: Bearer` for scripts, the
login cookie for the page (with its CSRF value on every POST; auth.py). Work that takes seconds runs
as a job (jobs.py); requests only read and queue.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ..errors import InputError, ProvenanceError
from . import auth, inputs, jobs, pages

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ..api import Library
    from ..db.tokens import TokenInfo

log = logging.getLogger("provenance.serve")

# The report pages' own policy (reporting/templates/base.html.j2), sent as a header too, plus a
# sandbox: a report shown by the server can run nothing and reach nothing, exactly like the file.
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'self'; sandbox")
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_COMMON_HEADERS = [(b"x-content-type-options", b"nosniff")]
# Links out of a report or the API never tell the site where they came from; the desk's own pages
# send their origin to themselves (a browser sends "Origin: null" under no-referrer, and the
# cross-site check needs the real one).
_DEFAULT_REFERRER = (b"referrer-policy", b"no-referrer")
_UPLOAD_PATHS = {"/api/checks", "/api/ingest", "/checks"}
_COPY_CHUNK = 1 << 20
# A body refused for its size is read and dropped up to this much more before the 413 goes out, so
# that a client still sending sees the answer rather than a reset connection; beyond, it is cut off.
_DRAIN_MAX = 64 * 1024**2
_MAX_FORM_FIELDS = 8


@dataclass(frozen=True)
class ServeConfig:
    allow_private_urls: bool = False
    max_upload: int = inputs.DEFAULT_MAX_UPLOAD
    secure_cookie: bool = False  # set when TLS is in front (--behind-tls-proxy): the cookie never goes in clear


@dataclass(frozen=True)
class Caller:
    info: "TokenInfo"
    token: str
    by_cookie: bool


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Desk:
    """The app's state: the library, the job runner, the settings, a CSRF key made at start."""

    def __init__(self, library: "Library", runner: jobs.JobRunner, config: ServeConfig) -> None:
        import secrets

        self.library, self.runner, self.config = library, runner, config
        self.csrf_key = secrets.token_bytes(32)
        self.upload_dir = Path(tempfile.mkdtemp(prefix="provenance-serve-"))

    def close(self) -> None:
        self.runner.close()
        shutil.rmtree(self.upload_dir, ignore_errors=True)

    def submit(self, spec: jobs.JobSpec) -> jobs.JobView:
        """Queue a job; an upload the queue refuses is removed at once."""
        try:
            return self.runner.submit(spec)
        except jobs.QueueFull:
            if spec.uploaded and spec.target:
                Path(spec.target).unlink(missing_ok=True)
            raise

    # --- who is calling ------------------------------------------------------------------------

    async def caller(self, request: Request) -> Caller | None:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            token, by_cookie = (token.strip() if scheme.lower() == "bearer" else ""), False
        else:
            token, by_cookie = request.cookies.get(auth.COOKIE, ""), True
        info = await run_in_threadpool(auth.authenticate, self.library.engine, token)
        return Caller(info, token, by_cookie) if info is not None else None

    async def require(self, request: Request) -> Caller:
        caller = await self.caller(request)
        if caller is None:
            raise ApiError(401, "a valid token is needed: send 'Authorization: Bearer TOKEN' "
                                "(provenance token create NAME makes one)")
        if request.method not in ("GET", "HEAD") and caller.by_cookie:
            # Every POST a browser makes with the cookie: from this origin, with the page's CSRF value
            # (header from the script, field from a form; Starlette keeps the parsed form for the route).
            same_origin(request)
            sent = request.headers.get("x-csrf-token")
            if sent is None and request.headers.get("content-type", "").startswith(
                    ("multipart/form-data", "application/x-www-form-urlencoded")):
                sent = _text((await request.form(max_files=1, max_fields=_MAX_FORM_FIELDS)).get("csrf"))
            if not auth.csrf_ok(self.csrf_key, caller.token, sent):
                raise ApiError(403, "missing or wrong CSRF value; reload the page")
        return caller

    def csrf_form_ok(self, caller: Caller, request: Request, form: Any) -> None:
        if caller.by_cookie and not auth.csrf_ok(self.csrf_key, caller.token, request.headers.get("x-csrf-token")) \
                and not auth.csrf_ok(self.csrf_key, caller.token, _text(form.get("csrf"))):
            raise ApiError(403, "missing or wrong CSRF value; reload the page")

    # --- reading a submission ------------------------------------------------------------------

    async def read_spec(self, request: Request, kind: str, caller: Caller) -> jobs.JobSpec:
        ct = request.headers.get("content-type", "")
        if ct.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form(max_files=1, max_fields=_MAX_FORM_FIELDS)
            try:
                self.csrf_form_ok(caller, request, form)
                return await self._form_spec(kind, form)
            finally:
                await form.close()
        if caller.by_cookie and not auth.csrf_ok(self.csrf_key, caller.token, request.headers.get("x-csrf-token")):
            raise ApiError(403, "missing or wrong CSRF value; reload the page")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the body is not JSON; send {\"url\": ...} or a multipart upload") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object such as {\"url\": \"https://...\"}")
        return await self._url_spec(kind, _text(body.get("url")), body.get("posted_at"))

    async def _form_spec(self, kind: str, form: Any) -> jobs.JobSpec:
        upload = form.get("file")
        url, posted_at = _text(form.get("url")), form.get("posted_at")
        if not isinstance(upload, UploadFile) or not upload.filename and not upload.size:
            return await self._url_spec(kind, url, posted_at)
        posted = _posted(posted_at)
        path = await run_in_threadpool(self._keep_upload, upload)
        size = path.stat().st_size
        from ..wording import human_size

        return jobs.JobSpec(kind=kind, target=str(path), post_url=url or None, posted_at=posted, uploaded=True,
                            shown=f"upload ({path.suffix.lstrip('.')}, {human_size(size)})")

    async def _url_spec(self, kind: str, url: str, posted_at: object) -> jobs.JobSpec:
        if not url:
            raise ApiError(400, "give a URL (\"url\") or upload a file (multipart field \"file\")")
        posted = _posted(posted_at)
        refusal = await run_in_threadpool(inputs.url_refusal, url, allow_private=self.config.allow_private_urls)
        if refusal is not None:
            raise ApiError(400, refusal)
        return jobs.JobSpec(kind=kind, target=url.strip(), posted_at=posted, shown=url.strip())

    def _keep_upload(self, upload: UploadFile) -> Path:
        """Copy the upload into the server's folder under a name of its own, then sniff it."""
        import secrets

        upload.file.seek(0)
        path = self.upload_dir / f"upload-{secrets.token_hex(8)}"
        copied = 0
        with open(path, "wb") as out:
            while chunk := upload.file.read(_COPY_CHUNK):
                copied += len(chunk)
                if copied > self.config.max_upload:
                    out.close()
                    path.unlink(missing_ok=True)
                    raise ApiError(413, self.too_large())
                out.write(chunk)
        try:
            kind = inputs.sniff_file(path)
        except InputError:
            path.unlink(missing_ok=True)
            raise
        return path.rename(path.with_suffix(f".{kind}"))

    def too_large(self) -> str:
        from ..wording import human_size

        return (f"the upload is larger than this server takes ({human_size(self.config.max_upload)}); "
                "send the post's URL instead, or start the server with a larger --max-upload")


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _posted(value: object) -> str | None:
    return inputs.parse_time_field(value if value != "" else None)


def same_origin(request: Request) -> None:
    """A browser names the page a POST comes from; one from another site is refused (CSRF)."""
    origin = request.headers.get("origin")
    if origin is None:  # not sent by older browsers for same-origin POSTs; the CSRF value still holds
        return
    host = request.headers.get("host", "")
    if origin.split("://", 1)[-1] != host:
        raise ApiError(403, "cross-site request refused")


def job_json(job: jobs.JobView) -> dict[str, Any]:
    from ..reporting.text import iso

    out: dict[str, Any] = {
        "id": job.job_id, "kind": job.kind, "status": job.status, "target": job.shown,
        "progress": {"stage": job.stage, "fraction": job.fraction},
        "error": job.error, "error_code": job.error_code, "result": job.result,
        "created_at": iso(job.created_at), "finished_at": iso(job.finished_at),
    }
    if job.check_id is not None:
        out["check_id"] = job.check_id
        out["report_url"] = f"/api/checks/{job.job_id}/report?format=html"
    if job.audit_id is not None:
        out["audit_id"] = job.audit_id
        out["report_url"] = f"/api/audits/{job.audit_id}/report?format=html"
    return out


STATUS_URLS = {jobs.CHECK: "/api/checks/{}", jobs.INGEST: "/api/jobs/{}", jobs.AUDIT: "/api/jobs/{}"}


def report_response(text: str, fmt: str) -> Response:
    if fmt == "html":
        return HTMLResponse(text, headers={"content-security-policy": REPORT_CSP})
    if fmt == "json":
        return Response(text, media_type="application/json")
    return Response(text, media_type="text/markdown; charset=utf-8")


def build_app(library: "Library", config: ServeConfig, runner: jobs.JobRunner | None = None) -> "ASGIApp":
    """The ASGI app over `library`; `runner` defaults to a thread pool in this process."""
    desk = Desk(library, runner or jobs.ThreadJobRunner(library), config)
    from . import api_routes

    routes = [*api_routes.routes(desk), *pages.routes(desk),
              Mount("/static", app=StaticFiles(directory=Path(__file__).parent / "static"), name="static")]

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if request.url.path.startswith("/api/"):
            headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
        if exc.status == 401:  # a person without a token: to the login form
            return RedirectResponse("/login", status_code=303)
        return pages.error_page(exc.status, exc.message)

    async def provenance_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProvenanceError)
        status = 503 if isinstance(exc, jobs.QueueFull) else 400 if exc.exit_code == 2 else 500
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.message, "exit_code": exc.exit_code}, status_code=status)
        return pages.error_page(status, exc.message)

    async def body_too_large(request: Request, exc: Exception) -> Response:
        await drain(request.receive)
        message = desk.too_large() if request.url.path in _UPLOAD_PATHS else "the request body is too large"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=413)
        return pages.error_page(413, message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return pages.error_page(exc.status_code, str(exc.detail))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        desk.close()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ApiError: api_error, ProvenanceError: provenance_error,
                                        HTTPException: http_error, inputs.BodyTooLarge: body_too_large})
    app.state.desk = desk
    return BodyLimit(app, max_upload=config.max_upload)


async def drain(receive: "Receive") -> None:
    """Read and drop what is left of a request body, up to _DRAIN_MAX."""
    dropped = 0
    while dropped <= _DRAIN_MAX:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodyLimit:
    """Outermost ASGI layer: a declared body over the limit is refused at once (413), one that grows
    past it while read raises BodyTooLarge in the reader; every response gets the common headers."""

    def __init__(self, app: "ASGIApp", *, max_upload: int) -> None:
        self.app, self.max_upload = app, max_upload

    async def __call__(self, scope: "Scope", receive: "Receive", send: "Send") -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        limit = (self.max_upload + inputs.MULTIPART_SLACK if multipart and scope["path"] in _UPLOAD_PATHS
                 else inputs.MAX_JSON_BODY)
        declared = headers.get(b"content-length")

        async def send_with_headers(message: "Message") -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *_COMMON_HEADERS]
                if not any(k.lower() == b"referrer-policy" for k, _ in headers):
                    headers.append(_DEFAULT_REFERRER)
                message["headers"] = headers
            await send(message)

        if declared is not None and declared.isdigit() and int(declared) > limit:
            await drain(receive)
            response = JSONResponse({"error": f"the request body is larger than this server takes ({limit} bytes)"},
                                    status_code=413, headers={"connection": "close"})
            return await response(scope, receive, send_with_headers)
        seen, refused = 0, False

        async def counting_receive() -> "Message":
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True  # raised once; the handler of the 413 then drains the rest
                    raise inputs.BodyTooLarge()
            return message

        await self.app(scope, counting_receive, send_with_headers)
