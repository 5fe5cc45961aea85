"""The pages for people: login, the desk (submit, recent checks), a job's progress and verdict, the
library's search, audits. Server-rendered (Jinja2, autoescaped, untrusted text made visible as in
the reports); one small script of the app's own polls a running job. No CDN, no build step."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from . import auth, jobs

if TYPE_CHECKING:
    from jinja2 import Environment

    from .app import Caller, Desk

_TEMPLATES = Path(__file__).parent / "templates"
_LOGIN_FIELDS = 2


@lru_cache(maxsize=1)
def environment() -> "Environment":
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(default=True),
                      finalize=_shown, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["size"] = _size
    return env


def _shown(value: Any) -> Any:
    """Untrusted text with its control, escape and bidi characters replaced visibly, as in the reports."""
    from markupsafe import Markup

    from ..reporting.text import visible

    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value, keep_lines=True)
    return value


def _when(dt: Any) -> str:
    from datetime import UTC

    return "unknown" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _size(n: int) -> str:
    from ..wording import human_size

    return human_size(n)


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    from .app import PAGE_CSP

    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={"content-security-policy": PAGE_CSP,
                                                           "cache-control": "no-store",
                                                           "referrer-policy": "same-origin"})


def error_page(status: int, message: str) -> Response:
    return render("error.html.j2", status=status, status_code=status, message=message, caller=None)


def routes(desk: "Desk") -> list[Route]:
    from .api_routes import MAX_ID, audit_spec, audit_summaries, search_library

    def ctx(caller: "Caller", **more: Any) -> dict[str, Any]:
        return {"caller": caller.info, "csrf": auth.csrf_value(desk.csrf_key, caller.token), **more}

    async def page_caller(request: Request) -> "Caller":
        return await desk.require(request)  # ApiError(401) becomes a redirect to /login

    async def login_form(request: Request) -> Response:
        return render("login.html.j2", caller=None, error=None)

    async def login(request: Request) -> Response:
        from .app import same_origin

        same_origin(request)
        form = await request.form(max_files=0, max_fields=_LOGIN_FIELDS)
        token = form.get("token")
        token = token.strip() if isinstance(token, str) else ""
        info = await run_in_threadpool(auth.authenticate, desk.library.engine, token)
        if info is None:
            return render("login.html.j2", status=401, caller=None, error="That token is not valid (or was revoked).")
        response = RedirectResponse("/", status_code=303)
        secure = desk.config.secure_cookie or request.url.scheme == "https"
        response.set_cookie(auth.COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    async def logout(request: Request) -> Response:
        caller = await page_caller(request)
        form = await request.form(max_files=0, max_fields=_LOGIN_FIELDS)
        desk.csrf_form_ok(caller, request, form)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response

    async def home(request: Request) -> Response:
        caller = await page_caller(request)
        checks = await run_in_threadpool(recent_checks, desk)
        return render("desk.html.j2", **ctx(caller, jobs=desk.runner.recent(20), checks=checks,
                                            max_upload=desk.config.max_upload))

    async def submit(request: Request) -> Response:
        caller = await page_caller(request)
        spec = await desk.read_spec(request, jobs.CHECK, caller)
        job = desk.submit(spec)
        return RedirectResponse(f"/jobs/{job.job_id}", status_code=303)

    async def job_page(request: Request) -> Response:
        caller = await page_caller(request)
        text = request.path_params["id"]
        job = desk.runner.get(int(text)) if text.isdigit() and int(text) <= MAX_ID else None
        if job is None:
            return error_page(404, "no such job (jobs are kept while the server runs; see the recent checks)")
        return render("job.html.j2", **ctx(caller, job=job))

    async def check_report(request: Request) -> Response:
        await page_caller(request)
        from .app import report_response

        text = request.path_params["id"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
            return error_page(404, "no such check")
        return report_response(await run_in_threadpool(desk.library.report, int(text), fmt="html"), "html")

    async def library(request: Request) -> Response:
        caller = await page_caller(request)
        q = {k: request.query_params.get(k, "") for k in ("url", "uploader", "since", "until")}
        rows = await run_in_threadpool(search_library, desk, {**q, "limit": 200})
        return render("library.html.j2", **ctx(caller, q=q, rows=rows))

    async def audits(request: Request) -> Response:
        caller = await page_caller(request)
        summaries = await run_in_threadpool(audit_summaries, desk)
        return render("audits.html.j2", **ctx(caller, audits=summaries, jobs=desk.runner.recent(20, jobs.AUDIT)))

    async def start_audit(request: Request) -> Response:
        caller = await page_caller(request)
        job = desk.submit(await audit_spec(desk, request, caller))
        return RedirectResponse(f"/jobs/{job.job_id}", status_code=303)

    async def audit_report(request: Request) -> Response:
        await page_caller(request)
        from ..reporting import render_audit
        from .app import report_response

        text = request.path_params["id"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
            return error_page(404, "no such audit")
        html = await run_in_threadpool(render_audit, int(text), settings=desk.library.settings, fmt="html")
        return report_response(html, "html")

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home, methods=["GET"]),
        Route("/checks", submit, methods=["POST"]),
        Route("/jobs/{id}", job_page, methods=["GET"]),
        Route("/checks/{id}/report", check_report, methods=["GET"]),
        Route("/library", library, methods=["GET"]),
        Route("/audits", audits, methods=["GET"]),
        Route("/audits", start_audit, methods=["POST"]),
        Route("/audits/{id}/report", audit_report, methods=["GET"]),
    ]


def recent_checks(desk: "Desk") -> list[Any]:
    from ..db import session_scope
    from ..db.clips import recent_checks as rows

    with session_scope(desk.library.engine) as session:
        return rows(session=session, limit=20)
