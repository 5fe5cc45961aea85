"""The command line: each command parses, calls one library function, prints."""

from __future__ import annotations

import gc
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__
from .errors import EvidenceError, InputError, ProvenanceError
from .reporting.text import safe
from .settings import ENV_DB, ENV_TSA, Settings
from .utc import parse_time

if TYPE_CHECKING:
    from . import audit as audit_lib, folder
    from .capture import CaptureOutcome

# The command line imports what a command needs when it runs, not before: a check in a new process
# then loads no audit, report-page or export code, and a missing file is refused before the
# database, SQLAlchemy, numpy or OpenCV are loaded (python -X importtime, bench/README.md "Index").
# These copies let the options be declared without those modules; tests/test_startup.py checks they agree.
REPORT_FORMATS = ("html", "json", "md")  # reporting.FORMATS
AUDIT_DEFAULT_WORKERS, AUDIT_MAX_WORKERS = 2, 16  # audit.DEFAULT_WORKERS, audit.MAX_WORKERS
AUDIT_DEFAULT_SLEEP_S, AUDIT_DEFAULT_BACKOFF_S = 1.0, 60.0  # audit.DEFAULT_SLEEP_S, audit.DEFAULT_BACKOFF_S
AUDIT_LISTERS = ("yt-dlp", "gallery-dl")  # gallerylist.LISTERS
WORKER_DEFAULT_CONCURRENCY, WORKER_MAX_CONCURRENCY = 2, 32  # worker.DEFAULT_CONCURRENCY, worker.MAX_CONCURRENCY
WORKER_DEFAULT_STALL_S = 30.0  # worker.DEFAULT_STALL_TIMEOUT_S


class Progress:
    """One self-rewriting status line on stderr; silent with --quiet or when stderr is not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.shown = False

    def __call__(self, stage: str, fraction: float | None) -> None:
        if not self.enabled:
            return
        text = f"{stage}: {fraction:4.0%}" if fraction is not None else f"{stage}..."
        sys.stderr.write(f"\r\x1b[2K{text}")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


class FolderBar:
    """click's progress bar (files done, ETA) on a terminal; nothing with --quiet or when not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar = None

    def __enter__(self) -> "FolderBar":
        return self

    def __call__(self, p: folder.FolderProgress) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=p.total, label="ingest", file=sys.stderr, show_eta=True,
                                         show_pos=True, item_show_func=lambda s: s)
            self.bar.__enter__()
        self.bar.update(p.done - self.bar.pos,
                        f"{p.ingested} new, {p.known} known, {p.skipped} skipped, {p.failed} failed")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


_ERROR_LIMIT = 2000  # characters of an error line: room for a long URL, not for a page of text


class UserError(click.ClickException):
    """A ProvenanceError shown as one line, exiting with its own code."""

    def __init__(self, error: ProvenanceError) -> None:
        super().__init__(error.message)
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        # Messages quote servers and pages (an HTTP status text, a title): cleaned like all terminal text.
        click.echo(f"error: {safe(self.message, limit=_ERROR_LIMIT)}", err=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C: temporary files go, workers stop."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


class Interrupted(click.ClickException):
    """Ctrl-C or SIGTERM: one line and exit 128 + the signal, as shells report it (not click's
    "Aborted!" and 1)."""

    def __init__(self, signum: int) -> None:
        super().__init__("interrupted; what was recorded before stays, nothing is half-written: "
                         "run the same command again to go on")
        self.exit_code = 128 + signum

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(self.message, err=True)


class ProvenanceGroup(click.Group):
    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except ProvenanceError as e:
            raise UserError(e) from e
        except KeyboardInterrupt as e:
            raise Interrupted(signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT) from None


# Row ids are INTEGER columns: PostgreSQL's hold 32 bits, so a larger id names no row, and the
# drivers refuse to send one beyond 64 bits (OverflowError) rather than answer "no such check".
MAX_ID = 2**31 - 1
id_type = click.IntRange(min=1, max=MAX_ID)

db_option = click.option("--db", "db_url", metavar="URL", envvar=ENV_DB,
                         help=f"SQLAlchemy database URL [env {ENV_DB}; default: an SQLite file in the user data folder].")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress output.")
cookies_option = click.option("--cookies", type=click.Path(path_type=Path), metavar="FILE",
                              help="Netscape cookies file for sites that need a login (X does today).")
url_option = click.option("--url", "post_url", metavar="URL",
                          help="The post this clip was seen in (for a local file; overrides a downloaded post's URL).")
private_option = click.option(
    "--allow-private-urls", is_flag=True,
    help="Let a page lead to loopback or private addresses (127.0.0.1, 10.x, 192.168.x...); by default only "
         "the host and port of the URL you give may be one.")
capture_option = click.option(
    "--no-capture", is_flag=True,
    help="Do not capture the post's page (a full-page screenshot and a web archive made with headless Chromium, "
         "kept as evidence) when TARGET is a post URL.")
tsa_option = click.option(
    "--tsa", "tsa_url", metavar="URL", envvar=ENV_TSA,
    help=f"A Time-Stamp Authority (RFC 3161), e.g. https://freetsa.org/tsr: the clip's SHA-256 (and a report "
         f"written) gets a signed timestamp, kept in the library; `provenance verify` checks them [env {ENV_TSA}].")
posted_option = click.option("--posted-at", metavar="TIME",
                             help="When the post was published, ISO 8601 (e.g. 2024-10-19T08:00:00Z); overrides the platform's time.")


@click.group(cls=ProvenanceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provenance")
def cli() -> None:
    """Video provenance: has this footage been posted before, where, when, and how was it changed?

    Example:

    \b
        provenance ingest samples/bikes.mp4 --url https://example.org/original --posted-at 2019-05-01T10:00:00Z
        provenance check ./clip.mp4 --posted-at 2024-10-19T08:00:00Z
    """


@cli.command()
@click.argument("target")
@url_option
@posted_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (schema_version 3).")
@capture_option
@click.option("--no-record", is_flag=True, help="Do not add this clip and check to the library.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write a report of this check to FILE (format from its name: .html, .json, .md).")
@click.option("--report-format", type=click.Choice(REPORT_FORMATS),
              help="The --report format, when the file name does not say.")
@cookies_option
@private_option
@tsa_option
@db_option
@quiet_option
def check(target: str, post_url: str | None, posted_at: str | None, as_json: bool, no_capture: bool, no_record: bool,
          report_path: Path | None, report_format: str | None, cookies: Path | None, allow_private_urls: bool,
          tsa_url: str | None, db_url: str | None, quiet: bool) -> None:
    """Check a video URL or file against all known footage.

    Prints a verdict: no_match, reused (seen before this post) or earliest_known, with the matching
    clips, where each match sits in time, and where they were seen. Exits 0 whatever the verdict.
    With --report, also writes the full report (HTML with the evidence frames, JSON or Markdown).

    Example:

    \b
        provenance check https://x.com/someone/status/1849... --cookies cookies.txt
        provenance check ./clip.mp4 --posted-at 2024-10-19T08:00:00Z --json
        provenance check ./clip.mp4 --report report.html
        provenance check ./clip.mp4 --report report.html --tsa https://freetsa.org/tsr
    """
    from .fetch import check_target

    check_target(target)  # a missing file or a bad URL fails here, before anything heavy is loaded
    if report_path is not None:
        if no_record:
            raise InputError("--report needs the check recorded (reports are built from the library); drop --no-record")
        from . import reporting

        reporting.check_destination(report_path, report_format)  # a bad path fails before the work, not after
    from .reporting import results as result_text
    from .api import Library

    settings = Settings.resolve(db_url=db_url, cookies=cookies, allow_private_urls=allow_private_urls,
                                tsa_url=tsa_url, capture_pages=not no_capture)
    progress = Progress(quiet)
    try:
        with Library.from_settings(settings) as library:
            result = library.check(target, post_url=post_url, posted_at=parse_time(posted_at), record=not no_record,
                                   progress=progress)
    finally:
        progress.done()
    _capture_note(result.clip.page)
    click.echo(result_text.check_to_json(result) if as_json else result_text.check_summary(result))
    if report_path is not None and result.check_id is not None:
        try:
            reporting.write_check_report(result.check_id, report_path, settings=settings, fmt=report_format)
        except InputError as e:
            raise InputError(f"check {result.check_id} is recorded, but {e.message}; "
                             f"write its report with: provenance report {result.check_id} -o FILE") from e
        if not as_json:
            click.echo(f"  report      {report_path}")
        if settings.tsa_url is not None:
            from . import attest

            token = attest.stamp_report(result.check_id, report_path, settings=settings)
            if not as_json:
                click.echo(f"  timestamp   {report_path}{attest.TOKEN_SUFFIX} ({token.stamped_at:%Y-%m-%d %H:%M:%S} UTC, "
                           f"{safe(token.tsa_name)})")


@cli.command("report")
@click.argument("check_id", metavar="[ID]", type=id_type, required=False)
@click.option("--audit", "audit_id", type=id_type, metavar="ID",
              help="Report a whole audit instead (ids in `provenance audits`): one page, a row per post, "
                   "every check's section.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the report to FILE (format from its name: .html, .json, .md) instead of printing it.")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS),
              help="html (one self-contained page with the evidence frames), json (schema: "
                   "provenance/schemas/report.v2.schema.json; audits: audit-report.v2.schema.json) or md "
                   "[default: from FILE's name; md when printing].")
@tsa_option
@db_option
def report_command(check_id: int | None, audit_id: int | None, output: Path | None, fmt: str | None,
                   tsa_url: str | None, db_url: str | None) -> None:
    """Make the report of a recorded check, by its id ("recorded as check N"), or of an audit.

    The report is built from the library, so an old check reports as it was checked: the answer,
    first seen and how its time is known, the evidence frames side by side, the timeline of
    sightings, the clip's facts and red flags, and what is needed to reproduce it. An audit's
    report has its counts, one row per post (reused first) and each checked post's report.

    Example:

    \b
        provenance report 42 -o report.html
        provenance report 42 --format json -o report.json
        provenance report 42 --format md
        provenance report --audit 7 -o audit.html
    """
    if (check_id is None) == (audit_id is None):
        raise InputError("give a check ID or --audit ID (not both); e.g. provenance report 42")
    if tsa_url and (output is None or audit_id is not None):
        raise InputError("--tsa timestamps a check's report written to a file; give -o FILE and a check ID")
    from . import reporting

    settings = Settings.resolve(db_url=db_url, tsa_url=tsa_url)
    what = f"check {check_id}" if audit_id is None else f"audit {audit_id}"
    if output is None:
        fmt = reporting.format_for(None, fmt)
        text = (reporting.render_check(check_id, settings=settings, fmt=fmt) if audit_id is None else
                reporting.render_audit(audit_id, settings=settings, fmt=fmt))
        click.echo(text, nl=False)
    else:
        written = (reporting.write_check_report(check_id, output, settings=settings, fmt=fmt) if audit_id is None
                   else reporting.write_audit_report(audit_id, output, settings=settings, fmt=fmt))
        click.echo(f"{written} report of {what} written to {output}", err=True)
        if tsa_url and check_id is not None:
            from . import attest

            token = attest.stamp_report(check_id, output, settings=settings)
            click.echo(f"timestamped by {safe(token.tsa_name)} at {token.stamped_at:%Y-%m-%d %H:%M:%S} UTC; "
                       f"token in {output}{attest.TOKEN_SUFFIX}", err=True)


@cli.command("verify")
@click.argument("what", metavar="ID|BUNDLE")
@click.option("--tsa-ca", "roots_file", type=click.Path(dir_okay=False, path_type=Path), metavar="PEM",
              help="The CA certificate(s) the TSA's certificate must chain to [default: this machine's CA bundle].")
@db_option
def verify_command(what: str, roots_file: Path | None, db_url: str | None) -> None:
    """Check that a recorded check's files, or a case bundle's, still hold the bytes recorded, and
    that each timestamp over them verifies.

    For a check ID: re-hashes the clip's evidence file and every report timestamped for the check
    (check --report --tsa, report -o FILE --tsa). For a bundle (`provenance bundle`, a .zip or a
    folder): checks its BagIt manifest, no library needed. Each RFC 3161 token is verified against
    the TSA's CA. One line per file; exits 6 if any file changed, is missing, or has a token that
    does not verify.

    Example:

    \b
        provenance verify 42 --tsa-ca freetsa-cacert.pem
        provenance verify case-42.zip --tsa-ca freetsa-cacert.pem
    """
    from .reporting import results as result_text

    if what.isdigit():
        from . import attest

        check_id = id_type.convert(what, None, None)
        results = attest.verify_check(check_id, settings=Settings.resolve(db_url=db_url), roots_file=roots_file)
    else:
        from . import bundle

        results = bundle.verify_bundle(Path(what), roots_file=roots_file)
    click.echo(result_text.verification_lines(results))
    failed = sum(not r.ok for r in results)
    if failed:
        raise EvidenceError(f"{failed} of {len(results)} files of {'check ' + what if what.isdigit() else what} "
                            "do not verify (see above)")


@cli.command("keyframes")
@click.argument("check_id", metavar="ID", type=id_type)
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="The folder to write the JPEG files to (made if missing; existing files are never overwritten).")
@db_option
def keyframes_command(check_id: int, output: Path, db_url: str | None) -> None:
    """Write one frame per shot of a checked clip as JPEG, for reverse image search (Google Lens,
    Yandex, Bing, TinEye): how to find earlier copies that are not in your own library.

    Example:

    \b
        provenance keyframes 42 -o keyframes-42/
    """
    from . import keyframes

    written = keyframes.write_keyframes(check_id, output, settings=Settings.resolve(db_url=db_url))
    for k in written:
        click.echo(f"{k.path}  shot {k.shot.start_s:.2f}-{k.shot.end_s:.2f} s, frame at {k.shot.keyframe_s:.2f} s  "
                   f"sha256 {k.sha256}")
    click.echo(f"{len(written)} keyframe{'s' if len(written) != 1 else ''} written; search each by upload: "
               + "; ".join(f"{engine} {page}" for engine, page, _ in keyframes.UPLOAD_STEPS), err=True)


@cli.command("bundle")
@click.argument("check_id", metavar="ID", type=id_type)
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Where to write it: a .zip file, or else a new folder.")
@tsa_option
@db_option
def bundle_command(check_id: int, output: Path, tsa_url: str | None, db_url: str | None) -> None:
    """Package everything a check stands on in one case bundle (BagIt, SHA-256 manifest): the clip
    file, its report as HTML, JSON and Markdown, each timestamped report and every timestamp token.

    Anyone can check it later with `provenance verify BUNDLE` or any BagIt validator (bagit.py
    --validate), without the library. With --tsa, the manifest itself is timestamped, which covers
    every file in the bundle.

    Example:

    \b
        provenance bundle 42 -o case-42.zip --tsa https://freetsa.org/tsr
    """
    from . import bundle

    made = bundle.make_bundle(check_id, output, settings=Settings.resolve(db_url=db_url, tsa_url=tsa_url))
    click.echo(f"bundle of check {check_id} written to {made.path}: {made.files} files, "
               f"{made.size_bytes / 1e6:.1f} MB, {made.tokens} timestamp token{'s' if made.tokens != 1 else ''}", err=True)


@cli.command()
@click.argument("target")
@url_option
@posted_option
@cookies_option
@private_option
@click.option("--workers", "-j", type=click.IntRange(min=1), metavar="N",
              help="For a folder: files decoded and hashed at once [default: the number of CPUs; "
                   "capped by free memory].")
@click.option("--queue", "queued", is_flag=True,
              help="For a folder on storage every worker reads at the same path: queue one job per video file "
                   "for `provenance worker` processes (PostgreSQL library) and follow them.")
@click.option("--detach", is_flag=True, help="With --queue: return once the jobs are queued.")
@capture_option
@tsa_option
@db_option
@quiet_option
def ingest(target: str, post_url: str | None, posted_at: str | None, cookies: Path | None,
           allow_private_urls: bool, workers: int | None, queued: bool, detach: bool, no_capture: bool,
           tsa_url: str | None, db_url: str | None, quiet: bool) -> None:
    """Add a video URL or file, or every video file below a folder, to the library as known footage.

    A folder is searched recursively; files already in the library (same SHA-256) are skipped, as
    are files that are not videos. It prints a summary: ingested, known, skipped, failed and why.

    Example:

    \b
        provenance ingest samples/bikes.mp4 --url https://example.org/original-post --posted-at 2019-05-01T10:00:00Z
        provenance ingest https://www.youtube.com/watch?v=...
        provenance ingest ~/archive/2024/ --workers 2
        provenance ingest /shared/archive/ --queue --db postgresql+psycopg://me@dbhost/provenance
    """
    from .reporting import results as result_text
    from .api import Library

    settings = Settings.resolve(db_url=db_url, cookies=cookies, allow_private_urls=allow_private_urls,
                                tsa_url=tsa_url, capture_pages=not no_capture)
    if detach and not queued:
        raise InputError("--detach goes with --queue")
    if queued:
        _ingest_queued(target, settings=settings, detach=detach, quiet=quiet)
        return
    if Path(target).expanduser().is_dir():
        from . import folder

        if post_url or posted_at:
            raise InputError("--url and --posted-at name one post; they cannot be given for a folder")
        with FolderBar(quiet) as bar:
            result = folder.ingest_folder(Path(target), settings=settings, workers=workers, progress=bar)
        click.echo(result_text.folder_summary(result, verbose=not quiet))
        return
    progress = Progress(quiet)
    try:
        with Library.from_settings(settings) as library:
            result = library.ingest(target, post_url=post_url, posted_at=parse_time(posted_at), progress=progress)
    finally:
        progress.done()
    _capture_note(result.clip.page)
    if not quiet:
        click.echo(result_text.ingest_summary(result))


def _ingest_queued(target: str, *, settings: Settings, detach: bool, quiet: bool) -> None:
    from . import jobs

    if not Path(target).expanduser().is_dir():
        raise InputError("--queue ingests a folder; give a folder every worker can read at the same path")
    if settings.tsa_url:
        raise InputError("--tsa (or PROVENANCE_TSA) timestamps one file's ingest; not a queued folder's")
    queued = jobs.queue_ingest(Path(target), settings=settings)
    click.echo(f"{queued.queued} ingest jobs queued (batch {queued.batch})", err=True)
    if not jobs.live_workers(settings):
        click.echo("no worker is running on this library yet: start some with: provenance worker", err=True)
    if detach or not queued.queued:
        return

    def show(state: jobs.BatchState) -> None:
        if not quiet and sys.stderr.isatty():
            sys.stderr.write(f"\r\x1b[2Kingest: {state.succeeded + state.failed} of {queued.queued} done, "
                             f"{state.doing} running, {state.failed} failed")
            sys.stderr.flush()

    try:
        state = jobs.follow_batch(settings, queued.batch, progress=show)
    except KeyboardInterrupt:
        _stopped_following("the ingest jobs")
    if not quiet and sys.stderr.isatty():
        sys.stderr.write("\n")
    click.echo(f"{state.succeeded} files ingested or already known, {state.failed} failed "
               "(the workers' logs say why)")


def _stopped_following(what: str, again: str = "") -> None:
    click.echo(f"stopped following; {what} go on in the workers{again}", err=True)
    raise click.exceptions.Exit(130)


def _capture_note(page: CaptureOutcome | None) -> None:
    """One line on stderr when the post's page could not be captured (never an error)."""
    if page is not None and page.note:
        click.echo(f"note: {safe(page.note, 400)}", err=True)


class AuditProgressView:
    """A bar with counts and ETA on a terminal; one plain line per post otherwise; nothing with --quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar = None

    def __call__(self, p: audit_lib.AuditProgress) -> None:
        if self.quiet:
            return
        if not self.tty:
            from .reporting import audit as audit_text

            click.echo(audit_text.progress_line(p), err=True)
            return
        if p.url is None:
            if p.to_do:
                self.bar = click.progressbar(length=p.to_do, label=f"audit {p.audit_id}", file=sys.stderr,
                                             show_pos=True, show_eta=True, item_show_func=lambda text: text)
                self.bar.__enter__()
        elif self.bar is not None:
            self.bar.update(1, f"reused {p.reused}, failed {p.failed}")

    def done(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@cli.command()
@click.argument("source", required=False)
@click.option("--urls", "urls_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Audit the post URLs in FILE (one per line, # comments), e.g. exported with gallery-dl.")
@click.option("--since", metavar="DATE", help="Only posts listed as posted on or after DATE (ISO 8601).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the first N posts of the listing.")
@click.option("--resume", "resume_id", type=id_type, metavar="ID",
              help="Resume audit ID (rerunning the same command resumes its newest unfinished audit anyway).")
@click.option("--retry-failed", is_flag=True, help="Check the audit's failed posts again.")
@click.option("--workers", type=click.IntRange(1, AUDIT_MAX_WORKERS), default=AUDIT_DEFAULT_WORKERS,
              show_default=True, help="Posts downloaded and hashed at once.")
@click.option("--sleep", "sleep_s", type=click.FloatRange(min=0), default=AUDIT_DEFAULT_SLEEP_S,
              show_default=True, metavar="SECONDS", help="Least time between two post downloads from one site.")
@click.option("--backoff", "backoff_s", type=click.FloatRange(min=0), default=AUDIT_DEFAULT_BACKOFF_S,
              show_default=True, metavar="SECONDS",
              help="Rest after an HTTP 429 without Retry-After, doubling with each 429 in a row.")
@click.option("--lister", type=click.Choice(AUDIT_LISTERS),
              help="The tool that lists the URL's posts [default: yt-dlp, or gallery-dl where yt-dlp cannot "
                   "list: X profiles, their /media tab, searches, lists].")
@click.option("--queue", "queued", is_flag=True,
              help="Queue one job per post for `provenance worker` processes on any machine (PostgreSQL "
                   "library), then follow the audit until it is done.")
@click.option("--detach", is_flag=True, help="With --queue: return once the posts are queued.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole audit as JSON (schema_version 1).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write the audit's report to FILE (format from its name: .html, .json, .md).")
@click.option("--report-format", type=click.Choice(REPORT_FORMATS),
              help="The --report format, when the file name does not say.")
@cookies_option
@private_option
@tsa_option
@db_option
@quiet_option
def audit(source: str | None, urls_file: Path | None, since: str | None, limit: int | None,
          resume_id: int | None, retry_failed: bool, workers: int, sleep_s: float, backoff_s: float,
          lister: str | None, queued: bool, detach: bool, as_json: bool, report_path: Path | None,
          report_format: str | None, cookies: Path | None, allow_private_urls: bool, tsa_url: str | None,
          db_url: str | None, quiet: bool) -> None:
    """Check every post of an account, channel, playlist or feed (or a URL list) against the library.

    yt-dlp lists the posts, or gallery-dl where yt-dlp cannot (X profiles, their /media tab,
    searches, lists: only posts with a video); the summary says which.

    Each post is checked as `provenance check` would and joins the library, oldest first, so later
    posts can match earlier ones. The audit lives in the database: rerunning the same command after
    an interruption resumes it, and no post is checked twice. A post that fails is recorded with its
    error and the audit goes on. Ends with a summary, reused posts first. Exits 0 when the audit
    completes, however many posts failed.

    Example:

    \b
        provenance audit https://www.youtube.com/@someone/videos --since 2024-01-01 --limit 200
        provenance audit https://x.com/someone --cookies cookies.txt --since 2024-01-01
        provenance audit https://example.org/feed.xml
        provenance audit --urls posts.txt --workers 4
        provenance audit --resume 12 --retry-failed
        provenance audit https://example.org/feed.xml --report audit.html
        provenance audit https://example.org/feed.xml --queue --db postgresql+psycopg://me@dbhost/provenance
    """
    if resume_id is not None and (since is not None or limit is not None):
        raise InputError("--since and --limit choose the posts of a new audit; drop them with --resume")
    if detach and not queued:
        raise InputError("--detach goes with --queue")
    if queued and tsa_url:
        # A TSA URL may carry a login, and jobs are rows anyone with the database can read.
        raise InputError("--tsa (or PROVENANCE_TSA) stamps the posts of an audit run here; queued posts are not "
                         "stamped yet: drop --queue, or unset the TSA")
    from . import audit as audit_lib, reporting
    from .reporting import audit as audit_text
    from .api import Library

    if report_path is not None:
        if detach:
            raise InputError("--report needs the finished audit; with --detach, write it later with: "
                             "provenance report --audit ID -o FILE")
        reporting.check_destination(report_path, report_format)  # a bad path fails before the work, not after
    settings = Settings.resolve(db_url=db_url, cookies=cookies, allow_private_urls=allow_private_urls,
                                tsa_url=tsa_url)
    options = audit_lib.AuditOptions(since=parse_time(since), limit=limit, workers=workers, sleep_s=sleep_s,
                                     backoff_s=backoff_s, retry_failed=retry_failed, lister=lister)
    view = AuditProgressView(quiet)
    try:
        if queued:
            result = _audit_queued(source, settings=settings, urls_file=urls_file, resume=resume_id,
                                   options=options, detach=detach, view=view)
            if result is None:
                return
        else:
            with Library.from_settings(settings) as library:
                result = library.audit(source, urls_file=urls_file, resume=resume_id, options=options,
                                       progress=view)
    finally:
        view.done()
    click.echo(audit_text.audit_to_json(result) if as_json else audit_text.audit_summary(result))
    if report_path is not None:
        written = reporting.write_audit_report(result.audit_id, report_path, settings=settings, fmt=report_format)
        if not quiet:
            click.echo(f"{written} report of audit {result.audit_id} written to {report_path}", err=True)


def _audit_queued(source: str | None, *, settings: Settings, urls_file: Path | None, resume: int | None,
                  options: audit_lib.AuditOptions, detach: bool, view: AuditProgressView):  # noqa: ANN202
    """Queue the audit's posts for the workers; follow it unless `detach` (then None)."""
    from . import audit as audit_lib, jobs

    queued = jobs.queue_audit(source, settings=settings, urls_file=urls_file, resume=resume, options=options)
    click.echo(f"audit {queued.audit_id}: {queued.posts} posts, {queued.queued} jobs queued for the workers",
               err=True)
    if not jobs.live_workers(settings):
        click.echo("no worker is running on this library yet: start some with: provenance worker", err=True)
    if detach:
        click.echo(f"follow it with: provenance audit --resume {queued.audit_id} --queue", err=True)
        return None
    try:
        jobs.follow_audit(settings, queued.audit_id, progress=view)
    except KeyboardInterrupt:
        view.done()
        _stopped_following(f"the posts of audit {queued.audit_id}",
                           f"; follow again with: provenance audit --resume {queued.audit_id} --queue")
    from . import pipeline

    return audit_lib.load_result(pipeline.open_library(settings), queued.audit_id)


@cli.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, WORKER_MAX_CONCURRENCY),
              default=WORKER_DEFAULT_CONCURRENCY, show_default=True, help="Jobs this worker runs at once.")
@click.option("--queues", "queues", multiple=True, metavar="NAMES",
              help="Only these queues, comma-separated: audit, ingest, check [default: all].")
@click.option("--stall-timeout", "stall_timeout_s", type=click.FloatRange(min=1), default=WORKER_DEFAULT_STALL_S,
              show_default=True, metavar="SECONDS",
              help="A worker silent this long is taken for dead, and its jobs are run again by others.")
@cookies_option
@db_option
def worker(concurrency: int, queues: tuple[str, ...], stall_timeout_s: float, cookies: Path | None,
           db_url: str | None) -> None:
    """Run the library's queued jobs (audit posts, folder ingests, checks) until stopped.

    Start any number, on any number of machines, against one PostgreSQL library (after
    `provenance db upgrade`). Evidence files go to the evidence store (PROVENANCE_STORE): give
    every worker the same shared folder, so reports made anywhere find them. A worker killed
    mid-job has its job run again by another after --stall-timeout. Ctrl-C or SIGTERM stops it.

    Example:

    \b
        provenance worker --db postgresql+psycopg://me@dbhost/provenance --concurrency 2
        provenance worker --queues audit --cookies cookies.txt
    """
    import logging

    from .jobs import require_postgresql
    from .worker import WorkerOptions, queues_of, run_worker

    settings = Settings.resolve(db_url=db_url, cookies=cookies)
    require_postgresql(settings.db_url, "provenance worker")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    click.echo(f"worker on {_shown(settings.db_url)}, {concurrency} jobs at once; Ctrl-C stops it", err=True)
    run_worker(settings, WorkerOptions(concurrency=concurrency, queues=queues_of(queues),
                                       stall_timeout_s=stall_timeout_s))


def _shown(db_url: str) -> str:
    from .db import shown_url

    return shown_url(db_url)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@db_option
def audits(as_json: bool, db_url: str | None) -> None:
    """List the audits in the library with their counts, newest first.

    Example:

    \b
        provenance audits
        provenance audit --resume 12      # show or finish one of them
    """
    from . import audit as audit_lib
    from .reporting import audit as audit_text

    summaries = audit_lib.list_all(settings=Settings.resolve(db_url=db_url))
    click.echo(audit_text.audits_to_json(summaries) if as_json else audit_text.audits_table(summaries))


@cli.group()
def db() -> None:
    """Manage the library database.

    Example:

    \b
        provenance db upgrade --db postgresql+psycopg://me@localhost/provenance
    """


@db.command("upgrade")
@db_option
def db_upgrade_command(db_url: str | None) -> None:
    """Create or migrate the database schema to the latest version.

    On PostgreSQL it also creates the job queue's tables (procrastinate's, for `provenance worker`),
    once, when procrastinate is installed (pip install 'provenance[postgres]').

    Example:

    \b
        provenance db upgrade
    """
    from .db import upgrade as db_upgrade

    settings = Settings.resolve(db_url=db_url)
    before, after = db_upgrade(settings.db_url)
    click.echo(f"database at {after} (was {before or 'empty'})")
    if settings.db_url.startswith("postgresql"):
        from . import jobs, pipeline

        if not jobs.queue_available():
            click.echo("no job queue: procrastinate is not installed (pip install 'provenance[postgres]')", err=True)
        elif jobs.install_schema(pipeline.open_library(settings)):
            click.echo("job queue created (procrastinate): start workers with: provenance worker")


@db.command("status")
@db_option
def db_status_command(db_url: str | None) -> None:
    """Show the database, its schema version, its size on disk and the rows in each table.

    Reads only: an empty database is reported, not set up.

    Example:

    \b
        provenance db status
        provenance db status --db postgresql+psycopg://me@localhost/provenance
    """
    from .reporting import library as library_text
    from .db import database_status

    settings = Settings.resolve(db_url=db_url)
    status = database_status(settings.db_url)
    click.echo(library_text.status_text(status, index=_index_location(settings.db_url)))


def _index_location(db_url: str):  # noqa: ANN202 - diskindex.IndexStatus
    """Where the library's on-disk index is and how big, without asking the database anything."""
    from . import diskindex

    return diskindex.describe_folder(db_url)


@cli.group("index")
def index_group() -> None:
    """The library's frame-hash index, kept on disk beside the database.

    Every check opens it instead of reading the whole library, and adds the clips written since
    (by any process or machine). Beside an SQLite file as FILE.index/; for PostgreSQL in the user
    cache folder, one copy per machine. Deleting it is safe: the next check builds it again.

    Example:

    \b
        provenance index status
        provenance index verify
        provenance index rebuild --db postgresql+psycopg://me@localhost/provenance
    """


@index_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@db_option
def index_status_command(as_json: bool, db_url: str | None) -> None:
    """Show where the index is, its size, and whether it holds every clip of the library.

    Reads only.

    Example:

    \b
        provenance index status
    """
    from . import diskindex
    from .reporting import library as library_text

    status = diskindex.describe(_open_read_only(db_url), min_quality=_min_quality())
    click.echo(json.dumps(status.to_dict()) if as_json else library_text.index_status_text(status))


@index_group.command("rebuild")
@db_option
def index_rebuild_command(db_url: str | None) -> None:
    """Build the index again from every frame hash in the library.

    Not needed in normal use (a check catches up, and rebuilds an index that does not match the
    database); for after `index verify` found a problem.

    Example:

    \b
        provenance index rebuild
    """
    from . import diskindex, pipeline
    from .reporting import library as library_text

    engine = pipeline.open_library(Settings.resolve(db_url=db_url))
    click.echo(library_text.index_status_text(diskindex.rebuild(engine, min_quality=_min_quality())))


@index_group.command("verify")
@db_option
def index_verify_command(db_url: str | None) -> None:
    """Compare the index with the database row by row and check its tables.

    Exits 0 when it matches, 5 (naming the problem) when it does not: then run `provenance index rebuild`.

    Example:

    \b
        provenance index verify
    """
    from . import diskindex
    from .errors import StoreError

    engine = _open_read_only(db_url)
    problems = diskindex.verify(engine, min_quality=_min_quality())
    if problems:
        raise StoreError(f"the index at {diskindex.location(engine.url)} does not match the database: "
                         f"{'; '.join(problems[:3])}; run: provenance index rebuild")
    click.echo(f"index at {diskindex.location(engine.url) or '(memory)'} matches the database")


def _open_read_only(db_url: str | None):  # noqa: ANN202 - a SQLAlchemy Engine
    """The library, opened to be read only, its schema checked; an empty database is refused."""
    from .db import connect, shown_url
    from .db.engine import database_is_empty, refuse_other_revision
    from .errors import StoreError

    engine = connect(Settings.resolve(db_url=db_url).db_url, read_only=True)
    if database_is_empty(engine):
        raise StoreError(f"database {shown_url(engine.url)} is empty: there is nothing to index yet; "
                         "ingest some footage first")
    refuse_other_revision(engine)
    return engine


def _min_quality() -> float:
    from .frames import MIN_QUALITY

    return MIN_QUALITY


@cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@quiet_option
def export_command(file: Path, db_url: str | None, quiet: bool) -> None:
    """Write the whole library (every table) to FILE, a portable gzip JSON Lines file.

    Import it into an empty database of either kind with `provenance import`. The evidence files
    are not included: clips keep their paths; copy the evidence store folder alongside.

    Example:

    \b
        provenance export library.jsonl.gz
        provenance import library.jsonl.gz --db postgresql+psycopg://me@localhost/provenance
    """
    from .reporting import library as library_text
    from .db import export_library

    settings = Settings.resolve(db_url=db_url)
    progress = Progress(quiet)
    try:
        counts = export_library(settings.db_url, file, progress=progress)
    finally:
        progress.done()
    if not quiet:
        click.echo(library_text.transfer_text("exported", counts, file))


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@quiet_option
def import_command(file: Path, db_url: str | None, quiet: bool) -> None:
    """Load a file written by `provenance export` into an empty database, keeping every id.

    All or nothing: a damaged file or a non-empty database leaves the database as it was.

    Example:

    \b
        provenance import library.jsonl.gz --db postgresql+psycopg://me@localhost/provenance
    """
    from .reporting import library as library_text
    from .db import import_library

    settings = Settings.resolve(db_url=db_url)
    progress = Progress(quiet)
    try:
        counts = import_library(settings.db_url, file, progress=progress)
    finally:
        progress.done()
    if not quiet:
        click.echo(library_text.transfer_text("imported", counts, file))


SERVE_DEFAULT_HOST, SERVE_DEFAULT_PORT = "127.0.0.1", 8700  # serve.DEFAULT_HOST, serve.DEFAULT_PORT
SERVE_DEFAULT_MAX_UPLOAD = "2G"  # serve.inputs.DEFAULT_MAX_UPLOAD
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """Bytes from "2G", "500M", "1048576" (binary units, as the README says)."""
    value = text.strip().upper().removesuffix("B")
    unit = value[-1:] if value[-1:] in _SIZE_UNITS else ""
    number = value[: len(value) - len(unit)]
    try:
        size = int(float(number) * _SIZE_UNITS[unit])
    except ValueError:
        raise InputError(f"bad size {text!r}; give bytes or a number with K, M, G or T, e.g. 500M") from None
    if size < 1:
        raise InputError(f"bad size {text!r}; it must be at least one byte")
    return size


@cli.command("serve")
@click.option("--host", default=SERVE_DEFAULT_HOST, show_default=True,
              help="Address to listen on; anything but loopback lets other machines connect (put TLS in front).")
@click.option("--port", default=SERVE_DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option("--allow-private-urls", is_flag=True,
              help="Let submitted URLs (and the pages they lead to) reach loopback or private addresses; by "
                   "default the server fetches only public ones.")
@click.option("--max-upload", default=SERVE_DEFAULT_MAX_UPLOAD, show_default=True, metavar="SIZE",
              help="Largest video file accepted (e.g. 500M, 2G); larger uploads get 413.")
@click.option("--workers", type=click.IntRange(1, 64), metavar="N", help="Jobs run at once (default 2).")
@click.option("--behind-tls-proxy", is_flag=True,
              help="A TLS reverse proxy on this machine is in front: no warning for --host, and the login "
                   "cookie is sent over HTTPS only.")
@db_option
def serve(host: str, port: int, allow_private_urls: bool, max_upload: str, workers: int | None,
          behind_tls_proxy: bool, db_url: str | None) -> None:
    """Serve the desk: a web page and a JSON API over the library, for a team.

    Every request needs a token (provenance token create NAME). Checks run in the background.

    Example:

    \b
        provenance token create alice
        provenance serve --db postgresql+psycopg://me@localhost/provenance
    """
    from . import serve as serve_lib
    from .serve.app import ServeConfig

    config = ServeConfig(allow_private_urls=allow_private_urls, max_upload=parse_size(max_upload),
                         secure_cookie=behind_tls_proxy)
    if serve_lib.exposed(host) and not behind_tls_proxy:
        click.echo(f"warning: listening on {host}: other machines can connect, and tokens and the login cookie "
                   "cross the network in clear; put a TLS reverse proxy in front (README: serve) and pass "
                   "--behind-tls-proxy", err=True)
    serve_lib.serve(Settings.resolve(db_url=db_url), config, host=host, port=port, workers=workers)


@cli.group("token")
def token_group() -> None:
    """Manage the tokens that let people and scripts into `provenance serve`.

    Example:

    \b
        provenance token create alice
        provenance token list
        provenance token revoke alice
    """


@token_group.command("create")
@click.argument("name")
@db_option
def token_create_command(name: str, db_url: str | None) -> None:
    """Make a token for NAME and print it, once: only its hash is kept.

    Example:

    \b
        provenance token create alice
    """
    from .api import Library
    from .serve import auth

    with Library.from_settings(Settings.resolve(db_url=db_url)) as library:
        token, info = auth.create_token(library.engine, name)
    click.echo(token)
    click.echo(f"token {safe(info.name)!r} created; it is shown only now: give it to its holder, "
               "who logs in with it or sends 'Authorization: Bearer TOKEN'", err=True)


@token_group.command("list")
@db_option
def token_list_command(db_url: str | None) -> None:
    """List the tokens by name, with when each was made, last used and revoked (never the tokens).

    Example:

    \b
        provenance token list
    """
    from .api import Library
    from .reporting.text import iso
    from .serve import auth

    with Library.from_settings(Settings.resolve(db_url=db_url)) as library:
        infos = auth.list_tokens(library.engine)
    if not infos:
        click.echo("no tokens; make one with: provenance token create NAME")
    for t in infos:
        state = f"revoked {iso(t.revoked_at, whole_seconds=True)}" if t.revoked_at else "active"
        used = iso(t.last_used_at, whole_seconds=True) or "never"
        click.echo(f"{safe(t.name):24}  created {iso(t.created_at, whole_seconds=True)}  last used {used}  {state}")


@token_group.command("revoke")
@click.argument("name")
@db_option
def token_revoke_command(name: str, db_url: str | None) -> None:
    """Revoke NAME's token: every request with it is refused from now on (401).

    Example:

    \b
        provenance token revoke alice
    """
    from .api import Library
    from .serve import auth

    with Library.from_settings(Settings.resolve(db_url=db_url)) as library:
        info = auth.revoke_token(library.engine, name)
    click.echo(f"token {safe(info.name)!r} revoked")


# How long a Python thread may hold the GIL while another waits (CPython's default: 5 ms). A check's
# decode is fed packet by packet from Python while the library opens (SQLAlchemy's imports) and frames
# are hashed on other threads: at 5 ms the feeding thread waits its turn and the decoder idles. 0.5 ms:
# 2-6% less wall time for a CLI check, the same CPU, in interleaved runs on 2 cores (0.1 ms: no better;
# bench/README.md, "Skipping what no sampled frame needs").
GIL_SWITCH_INTERVAL_S = 0.0005


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        cli(prog_name="provenance")
    finally:
        # On its way out CPython runs full garbage collections over every object still alive
        # (SQLAlchemy's, the matcher's): 0.2-0.3 s of a check's wall time (perf). Frozen, they are
        # skipped; what holds a resource (the library's connections, files) is closed by now.
        gc.freeze()


if __name__ == "__main__":
    main()
