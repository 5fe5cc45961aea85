"""The JSON API: /api/checks, /api/jobs, /api/clips, /api/ingest, /api/audits, /api/openapi.json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import InputError
from . import jobs, openapi
from .inputs import parse_time_field, url_refusal
from .app import STATUS_URLS, ApiError, Desk, job_json, report_response

if TYPE_CHECKING:
    from ..db.clips import CheckRow, SightingRow

_FORMATS = ("html", "json", "md")
MAX_ID = 2**31 - 1  # ids are 32-bit INTEGER columns in PostgreSQL (cli.MAX_ID)


def _id(request: Request, name: str = "id") -> int:
    text = request.path_params[name]
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise ApiError(404, f"no such {name.replace('_', ' ')}: {text[:40]!r}")
    return int(text)


def _format(request: Request) -> str:
    fmt = request.query_params.get("format", "html")
    if fmt not in _FORMATS:
        raise ApiError(400, f"unknown format {fmt[:20]!r}; use html, json or md")
    return fmt


def _limit(request: Request, default: int = 100) -> int:
    text = request.query_params.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= 500:
        raise ApiError(400, "limit must be a whole number from 1 to 500")
    return int(text)


def sighting_json(r: "SightingRow") -> dict[str, Any]:
    from ..reporting.text import iso

    return {"clip_sha256": r.clip_sha256, "duration_s": r.duration_s, "source": r.source, "url": r.url,
            "platform": r.platform, "uploader": r.uploader, "title": r.title, "posted_at": iso(r.posted_at),
            "observed_at": iso(r.observed_at), "clip_first_posted_at": iso(r.clip_first_posted_at)}


def check_row_json(r: "CheckRow") -> dict[str, Any]:
    from ..reporting.text import iso

    return {"check_id": r.check_id, "created_at": iso(r.created_at), "verdict": r.verdict, "url": r.url,
            "title": r.title, "first_seen_at": iso(r.first_seen_at)}


def search_library(desk: Desk, params: Any) -> list["SightingRow"]:
    from ..db import session_scope
    from ..db.clips import search_sightings
    from ..utc import parse_time

    since, until = parse_time(params.get("since") or None), parse_time(params.get("until") or None)
    with session_scope(desk.library.engine) as session:
        return search_sightings(session=session, url=params.get("url") or None,
                                uploader=params.get("uploader") or None, since=since, until=until,
                                limit=int(params.get("limit") or 100))


def routes(desk: Desk) -> list[Route]:
    async def submit(request: Request, kind: str) -> Response:
        caller = await desk.require(request)
        spec = await desk.read_spec(request, kind, caller)
        job = desk.submit(spec)
        return JSONResponse({"id": job.job_id, "status_url": STATUS_URLS[kind].format(job.job_id)}, status_code=202)

    async def post_check(request: Request) -> Response:
        return await submit(request, jobs.CHECK)

    async def post_ingest(request: Request) -> Response:
        return await submit(request, jobs.INGEST)

    def job_of(request: Request, kind: str | None) -> jobs.JobView:
        job = desk.runner.get(_id(request))
        if job is None or kind is not None and job.kind != kind:
            raise ApiError(404, f"no such {kind or 'job'}: {request.path_params['id'][:40]!r} "
                                "(jobs are kept while the server runs; recorded checks stay in the library)")
        return job

    async def get_check(request: Request) -> Response:
        await desk.require(request)
        return JSONResponse(job_json(job_of(request, jobs.CHECK)))

    async def get_job(request: Request) -> Response:
        await desk.require(request)
        return JSONResponse(job_json(job_of(request, None)))

    async def list_checks(request: Request) -> Response:
        await desk.require(request)
        return JSONResponse({"checks": [job_json(j) for j in desk.runner.recent(_limit(request, 20), jobs.CHECK)]})

    async def check_report(request: Request) -> Response:
        await desk.require(request)
        fmt, job = _format(request), job_of(request, jobs.CHECK)
        if job.check_id is None:
            raise ApiError(409, f"check {job.job_id} is {job.status}; its report exists once it is done")
        text = await run_in_threadpool(desk.library.report, job.check_id, fmt=fmt)
        return report_response(text, fmt)

    async def clips(request: Request) -> Response:
        await desk.require(request)
        _limit(request)
        rows = await run_in_threadpool(search_library, desk, request.query_params)
        return JSONResponse({"sightings": [sighting_json(r) for r in rows]})

    async def list_audits(request: Request) -> Response:
        await desk.require(request)
        summaries = await run_in_threadpool(audit_summaries, desk)
        import json

        from ..reporting.audit import audits_to_json

        running = [job_json(j) for j in desk.runner.recent(50, jobs.AUDIT) if j.status in (jobs.QUEUED, jobs.RUNNING)]
        return JSONResponse({"audits": json.loads(audits_to_json(summaries))["audits"],
                             "running": running})

    async def post_audit(request: Request) -> Response:
        caller = await desk.require(request)
        spec = await audit_spec(desk, request, caller)
        job = desk.submit(spec)
        return JSONResponse({"id": job.job_id, "status_url": STATUS_URLS[jobs.AUDIT].format(job.job_id)},
                            status_code=202)

    async def audit_report(request: Request) -> Response:
        await desk.require(request)
        fmt, audit_id = _format(request), _id(request)
        from ..reporting import render_audit

        text = await run_in_threadpool(render_audit, audit_id, settings=desk.library.settings, fmt=fmt)
        return report_response(text, fmt)

    async def openapi_json(request: Request) -> Response:
        await desk.require(request)
        return JSONResponse(openapi.DESCRIPTION)

    return [
        Route("/api/checks", post_check, methods=["POST"]),
        Route("/api/checks", list_checks, methods=["GET"]),
        Route("/api/checks/{id}", get_check, methods=["GET"]),
        Route("/api/checks/{id}/report", check_report, methods=["GET"]),
        Route("/api/jobs/{id}", get_job, methods=["GET"]),
        Route("/api/ingest", post_ingest, methods=["POST"]),
        Route("/api/clips", clips, methods=["GET"]),
        Route("/api/audits", list_audits, methods=["GET"]),
        Route("/api/audits", post_audit, methods=["POST"]),
        Route("/api/audits/{id}/report", audit_report, methods=["GET"]),
        Route("/api/openapi.json", openapi_json, methods=["GET"]),
    ]


def audit_summaries(desk: Desk) -> list[Any]:
    from ..db import session_scope
    from ..db.audits import list_audits

    with session_scope(desk.library.engine) as session:
        return list_audits(session=session)


async def audit_spec(desk: Desk, request: Request, caller: Any) -> jobs.JobSpec:
    """An audit from JSON {"source", "since", "limit"} or the page's form."""
    if request.headers.get("content-type", "").startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_files=0, max_fields=8)
        desk.csrf_form_ok(caller, request, form)
        body: dict[str, Any] = {k: form.get(k) for k in ("source", "since", "limit")}
    else:
        from . import auth

        if caller.by_cookie and not auth.csrf_ok(desk.csrf_key, caller.token, request.headers.get("x-csrf-token")):
            raise ApiError(403, "missing or wrong CSRF value; reload the page")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the body is not JSON; send {\"source\": \"https://...\"}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object such as {\"source\": \"https://...\"}")
    source = body.get("source").strip() if isinstance(body.get("source"), str) else ""
    if not source:
        raise ApiError(400, "give the account, channel, playlist or feed to audit as \"source\"")
    refusal = await run_in_threadpool(url_refusal, source, allow_private=desk.config.allow_private_urls)
    if refusal is not None:
        raise ApiError(400, refusal)
    limit = body.get("limit")
    if limit in (None, ""):
        limit = None
    elif isinstance(limit, int) or isinstance(limit, str) and limit.isdigit():
        limit = int(limit)
    else:
        raise InputError("limit must be a whole number of posts")
    since = body.get("since") or None
    return jobs.JobSpec(kind=jobs.AUDIT, target=source, audit={"since": parse_time_field(since), "limit": limit},
                        shown=source)
