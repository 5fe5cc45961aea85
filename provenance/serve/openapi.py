"""The OpenAPI 3.1 description served at /api/openapi.json, written out by hand (the app is Starlette,
which does not derive one); tests/test_serve.py checks it names every /api route the app has."""

from __future__ import annotations

from typing import Any

_ERROR = {"description": "one line saying what was wrong and what to do",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_AUTH = {"401": {**_ERROR, "description": "no token, or a revoked or unknown one"}}
_ACCEPTED = {"description": "queued", "content": {"application/json": {"schema": {
    "type": "object", "required": ["id", "status_url"],
    "properties": {"id": {"type": "integer"}, "status_url": {"type": "string"}}}}}}
_SUBMIT_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string", "format": "uri"},
        "posted_at": {"type": "string", "description": "ISO 8601; a time without a zone is UTC"}}}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the video; its type is told by its bytes"},
        "url": {"type": "string", "description": "the post the file was seen in (not fetched)"},
        "posted_at": {"type": "string"}}}}}}
_SUBMIT_ERRORS = {"400": {**_ERROR, "description": "bad input, or a URL that resolves to a private address"},
                  "413": {**_ERROR, "description": "upload over the server's limit (--max-upload)"},
                  "503": {**_ERROR, "description": "too many jobs waiting"}, **_AUTH}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}]
_FORMAT = {"name": "format", "in": "query", "schema": {"enum": ["html", "json", "md"], "default": "html"}}
_JOB = {"description": "the job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}
_REPORT = {"description": "the report: an HTML page (served with a Content-Security-Policy that lets it "
                          "run and load nothing), report.v1 JSON, or Markdown",
           "content": {"text/html": {}, "application/json": {}, "text/markdown": {}}}

DESCRIPTION: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "provenance desk", "version": "1",
             "description": "Check whether a video was posted before; browse the library. Every call needs "
                            "'Authorization: Bearer TOKEN' (provenance token create NAME)."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
            "Job": {"type": "object", "required": ["id", "status", "progress", "error", "result"], "properties": {
                "id": {"type": "integer"}, "kind": {"enum": ["check", "ingest", "audit"]},
                "status": {"enum": ["queued", "running", "done", "failed"]},
                "progress": {"type": "object", "properties": {"stage": {"type": ["string", "null"]},
                                                              "fraction": {"type": ["number", "null"]}}},
                "error": {"type": ["string", "null"]}, "error_code": {"type": ["integer", "null"]},
                "result": {"description": "when done: the JSON of `provenance check --json` (report.v1's "
                                          "check object), of ingest, or of the audit"},
                "check_id": {"type": "integer"}, "audit_id": {"type": "integer"},
                "report_url": {"type": "string"}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/checks": {
            "post": {"summary": "Check a clip (URL or upload) against the library", "requestBody": _SUBMIT_BODY,
                     "responses": {"202": _ACCEPTED, **_SUBMIT_ERRORS}},
            "get": {"summary": "The latest check jobs of this server", "responses": {"200": {
                "description": "{\"checks\": [Job...]}"}, **_AUTH}}},
        "/api/checks/{id}": {"get": {"summary": "A check job's state and, when done, its result",
                                     "parameters": _ID, "responses": {"200": _JOB, "404": _ERROR, **_AUTH}}},
        "/api/checks/{id}/report": {"get": {"summary": "The report of a finished check", "parameters": [*_ID, _FORMAT],
                                            "responses": {"200": _REPORT, "404": _ERROR, "409": _ERROR, **_AUTH}}},
        "/api/jobs/{id}": {"get": {"summary": "Any job's state (ingest and audit jobs)", "parameters": _ID,
                                   "responses": {"200": _JOB, "404": _ERROR, **_AUTH}}},
        "/api/ingest": {"post": {"summary": "Add a clip to the library as known footage", "requestBody": _SUBMIT_BODY,
                                 "responses": {"202": _ACCEPTED, **_SUBMIT_ERRORS}}},
        "/api/clips": {"get": {"summary": "Search the library's sightings (newest post first)", "parameters": [
            {"name": "url", "in": "query", "schema": {"type": "string"}, "description": "part of the post URL"},
            {"name": "uploader", "in": "query", "schema": {"type": "string"}, "description": "part of the name"},
            {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "posted at or after"},
            {"name": "until", "in": "query", "schema": {"type": "string"}, "description": "posted at or before"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
            "responses": {"200": {"description": "{\"sightings\": [...]}"}, "400": _ERROR, **_AUTH}}},
        "/api/audits": {
            "get": {"summary": "Every audit with its counts, and the audit jobs running",
                    "responses": {"200": {"description": "{\"audits\": [...], \"running\": [Job...]}"}, **_AUTH}},
            "post": {"summary": "Audit an account, channel, playlist or feed", "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"type": "object", "required": ["source"], "properties": {
                    "source": {"type": "string"}, "since": {"type": "string"}, "limit": {"type": "integer"}}}}}},
                "responses": {"202": _ACCEPTED, **_SUBMIT_ERRORS}}},
        "/api/audits/{id}/report": {"get": {"summary": "A stored audit's report", "parameters": [*_ID, _FORMAT],
                                            "responses": {"200": _REPORT, "400": _ERROR, **_AUTH}}},
        "/api/openapi.json": {"get": {"summary": "This description", "responses": {"200": {"description": "OpenAPI"}}}},
    },
}
