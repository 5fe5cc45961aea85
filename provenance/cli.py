"""The command line: each command parses, calls one library function, prints."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from . import __version__, folder, pipeline, report
from .db import upgrade as db_upgrade
from .errors import InputError, ProvenanceError
from .settings import ENV_DB, Settings


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


class UserError(click.ClickException):
    """A ProvenanceError shown as one line, exiting with its own code."""

    def __init__(self, error: ProvenanceError) -> None:
        super().__init__(error.message)
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.message}", err=True)


class ProvenanceGroup(click.Group):
    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except ProvenanceError as e:
            raise UserError(e) from e


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601; a time without a zone is taken as UTC."""
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"bad time {value!r}; use ISO 8601 such as 2024-10-19T08:00:00Z") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


db_option = click.option("--db", "db_url", metavar="URL", envvar=ENV_DB,
                         help=f"SQLAlchemy database URL [env {ENV_DB}; default: an SQLite file in the user data folder].")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress output.")
cookies_option = click.option("--cookies", type=click.Path(path_type=Path), metavar="FILE",
                              help="Netscape cookies file for sites that need a login (X does today).")
url_option = click.option("--url", "post_url", metavar="URL",
                          help="The post this clip was seen in (for a local file; overrides a downloaded post's URL).")
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
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (schema_version 1).")
@click.option("--no-record", is_flag=True, help="Do not add this clip and check to the library.")
@cookies_option
@db_option
@quiet_option
def check(target: str, post_url: str | None, posted_at: str | None, as_json: bool, no_record: bool,
          cookies: Path | None, db_url: str | None, quiet: bool) -> None:
    """Check a video URL or file against all known footage.

    Prints a verdict: no_match, reused (seen before this post) or earliest_known, with the matching
    clips, where each match sits in time, and where they were seen. Exits 0 whatever the verdict.

    Example:

    \b
        provenance check https://x.com/someone/status/1849... --cookies cookies.txt
        provenance check ./clip.mp4 --posted-at 2024-10-19T08:00:00Z --json
    """
    settings = Settings.resolve(db_url=db_url, cookies=cookies)
    progress = Progress(quiet)
    try:
        result = pipeline.check(target, settings=settings, post_url=post_url, posted_at=parse_time(posted_at),
                                record=not no_record, progress=progress)
    finally:
        progress.done()
    click.echo(report.check_to_json(result) if as_json else report.check_summary(result))


@cli.command()
@click.argument("target")
@url_option
@posted_option
@cookies_option
@click.option("--workers", "-j", type=click.IntRange(min=1), metavar="N",
              help="For a folder: files decoded and hashed at once [default: the number of CPUs].")
@db_option
@quiet_option
def ingest(target: str, post_url: str | None, posted_at: str | None, cookies: Path | None, workers: int | None,
           db_url: str | None, quiet: bool) -> None:
    """Add a video URL or file, or every video file below a folder, to the library as known footage.

    A folder is searched recursively; files already in the library (same SHA-256) are skipped, as
    are files that are not videos. It prints a summary: ingested, known, skipped, failed and why.

    Example:

    \b
        provenance ingest samples/bikes.mp4 --url https://example.org/original-post --posted-at 2019-05-01T10:00:00Z
        provenance ingest https://www.youtube.com/watch?v=...
        provenance ingest ~/archive/2024/ --workers 2
    """
    settings = Settings.resolve(db_url=db_url, cookies=cookies)
    if Path(target).expanduser().is_dir():
        if post_url or posted_at:
            raise InputError("--url and --posted-at name one post; they cannot be given for a folder")
        with FolderBar(quiet) as bar:
            result = folder.ingest_folder(Path(target), settings=settings, workers=workers, progress=bar)
        click.echo(report.folder_summary(result, verbose=not quiet))
        return
    progress = Progress(quiet)
    try:
        result = pipeline.ingest(target, settings=settings, post_url=post_url, posted_at=parse_time(posted_at),
                                 progress=progress)
    finally:
        progress.done()
    if not quiet:
        click.echo(report.ingest_summary(result))


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

    Example:

    \b
        provenance db upgrade
    """
    settings = Settings.resolve(db_url=db_url)
    before, after = db_upgrade(settings.db_url)
    click.echo(f"database at {after} (was {before or 'empty'})")


def main() -> None:
    cli(prog_name="provenance")


if __name__ == "__main__":
    main()
