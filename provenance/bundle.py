"""A case bundle: everything one check stands on, in one package anyone can verify later.

BagIt (RFC 8493, the Library of Congress's packaging standard; the `bagit` package writes and
validates it) because archives, courts and other newsrooms already have tools for it: a manifest of
SHA-256 sums over every file, checked by `bagit.py --validate` or `provenance verify BUNDLE`.

    data/clip/SHA256.EXT                  the evidence file, as stored
    data/reports/report.{html,json,md}    the check's report, rendered now from the library
    data/reports/stamped/NAME             each report timestamped when it was written, as it is now
    data/timestamps/PATH.N.tsr            RFC 3161 tokens over data/PATH (N: 1, 2... per token)
    data/content-credentials.json         the clip's C2PA manifest store as read, when it carries one
    manifest-sha256.txt.tsr               with a TSA: a token over the manifest, so over every file

The manifest alone proves nothing against someone who rewrites it with the files; the tokens do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .attest import FileVerification, files_of_check
from .db import timestamps as stored_stamps
from .errors import InputError
from .fetch import sha256_file
from .reporting import FORMATS, render_check
from .reporting.build import load_check
from .settings import Settings
from .timestamps import stamp, verify

_TOKENS = "timestamps"
_MANIFEST = "manifest-sha256.txt"
_MANIFEST_TOKEN = _MANIFEST + ".tsr"
_STORED_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".ts", ".png", ".jpg"}  # compressed already


@dataclass(frozen=True)
class Bundle:
    path: Path
    files: int  # payload files
    size_bytes: int  # payload bytes
    tokens: int


def make_bundle(check_id: int, out: Path, *, settings: Settings) -> Bundle:
    """Write check `check_id`'s bundle to `out`: a .zip file, or else a new folder."""
    import bagit

    out = Path(out)
    if out.exists():
        raise InputError(f"{out} already exists; give a new name for the bundle")
    if not out.parent.is_dir():
        raise InputError(f"cannot write the bundle to {out}: no folder {out.parent}; create it or choose another path")
    files = files_of_check(check_id, settings=settings)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp_name:
        root = Path(tmp_name) / f"case-{check_id}"
        root.mkdir()
        tokens = _collect(check_id, files, root, settings=settings)
        bag = bagit.make_bag(str(root), bag_info={
            "Internal-Sender-Identifier": f"provenance check {check_id}",
            "External-Description": f"Evidence of provenance check {check_id}: the clip, its reports, its C2PA "
                                    "manifest if it has one, and RFC 3161 timestamp tokens "
                                    "(data/timestamps/PATH.N.tsr is over data/PATH).",
        }, checksums=["sha256"])
        if settings.tsa_url is not None:
            (root / _MANIFEST_TOKEN).write_bytes(stamp(sha256_file(root / _MANIFEST), settings.tsa_url).response)
            bag.save()  # the tag manifest now lists the token too
            tokens += 1
        payload = list(bag.payload_files())
        size = sum((root / p).stat().st_size for p in payload)
        if out.suffix.lower() == ".zip":
            _zip(root, out)
        else:
            os.replace(root, out)
    return Bundle(path=out, files=len(payload), size_bytes=size, tokens=tokens)


def _collect(check_id: int, files: tuple[stored_stamps.StampedFile, ...], root: Path, *, settings: Settings) -> int:
    """Copy the check's files into `root`'s payload; returns how many tokens went in."""
    reports = root / "reports"
    reports.mkdir()
    for fmt in FORMATS:
        (reports / f"report.{fmt}").write_text(render_check(check_id, settings=settings, fmt=fmt), encoding="utf-8")
    reading = load_check(check_id, settings=settings).credentials
    if reading is not None and reading.credentials is not None:
        (root / "content-credentials.json").write_text(
            json.dumps(reading.credentials.manifest, indent=2, ensure_ascii=True) + "\n", encoding="utf-8")
    tokens = 0
    for file in files:
        if file.path is None or not Path(file.path).is_file():
            continue  # verify of the check says it is missing; the bundle carries what exists
        where = (Path("clip") if file.subject == stored_stamps.CLIP else Path("reports") / "stamped") / Path(file.path).name
        (root / where).parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(file.path, root / where)
        except OSError as e:
            raise InputError(f"cannot copy {file.path} into the bundle: {e.strerror or e}") from e
        for n, token in enumerate(file.stamps, start=1):
            token_path = root / _TOKENS / f"{where}.{n}.tsr"
            token_path.parent.mkdir(parents=True, exist_ok=True)
            token_path.write_bytes(token.response)
            tokens += 1
    return tokens


def _zip(root: Path, out: Path) -> None:
    tmp = out.with_name(f".{out.name}.part")
    try:
        with zipfile.ZipFile(tmp, "w") as z:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    kind = zipfile.ZIP_STORED if path.suffix.lower() in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
                    z.write(path, Path(root.name) / path.relative_to(root), compress_type=kind)
        os.replace(tmp, out)
    except OSError as e:
        raise InputError(f"cannot write the bundle to {out}: {e.strerror or e}; check the folder and free space") from e
    finally:
        tmp.unlink(missing_ok=True)


def verify_bundle(path: Path, *, roots_file: Path | None = None) -> tuple[FileVerification, ...]:
    """Validate a bundle (a .zip or a folder): BagIt's manifest over every file, then each token over
    the file it names. One result per payload file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such bundle: {path}; give a check ID or a bundle made by `provenance bundle`")
    if path.is_dir():
        return _verify_bag(path, roots_file)
    with tempfile.TemporaryDirectory(prefix="provenance-verify-") as tmp:
        try:
            with zipfile.ZipFile(path) as z:
                z.extractall(tmp)  # member names with .. or a leading / are made safe by zipfile itself
        except (zipfile.BadZipFile, OSError) as e:
            raise InputError(f"{path} is not a readable bundle ({e}); give a .zip or folder made by "
                             "`provenance bundle`") from e
        tops = [p for p in Path(tmp).iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise InputError(f"{path} is not a bundle: it should hold one case folder; make it with `provenance bundle`")
        return _verify_bag(tops[0], roots_file)


def _verify_bag(root: Path, roots_file: Path | None) -> tuple[FileVerification, ...]:
    import bagit

    try:
        bag = bagit.Bag(str(root))
    except bagit.BagError as e:
        raise InputError(f"{root} is not a BagIt bundle ({e}); make one with `provenance bundle`") from e
    problems: dict[str, str] = {}
    try:
        bag.validate()
    except bagit.BagValidationError as e:
        for d in e.details or [bagit.BagValidationError(e.message)]:
            problems[str(getattr(d, "path", "") or "bundle")] = _words(d)
    results = []
    for name in sorted(bag.payload_files()):
        subject = Path(name).relative_to("data")
        if subject.parts[0] == _TOKENS:
            continue
        if name in problems:
            results.append(FileVerification(subject="bundle", path=name, ok=False, problem=problems.pop(name)))
            continue
        results.append(_verify_tokens(root, subject, name, roots_file))
    results += [FileVerification(subject="bundle", path=p, ok=False, problem=why) for p, why in problems.items()]
    if (root / _MANIFEST_TOKEN).is_file():
        results.append(_verify_token_files(root / _MANIFEST, _MANIFEST, [root / _MANIFEST_TOKEN], roots_file))
    return tuple(results)


def _verify_tokens(root: Path, subject: Path, name: str, roots_file: Path | None) -> FileVerification:
    token_files = sorted((root / "data" / _TOKENS / subject.parent).glob(f"{subject.name}.*.tsr"))
    return _verify_token_files(root / name, name, token_files, roots_file)


def _verify_token_files(file: Path, name: str, token_files: list[Path], roots_file: Path | None) -> FileVerification:
    if not token_files:
        return FileVerification(subject="bundle", path=name, ok=True, problem="")
    sha = sha256_file(file)
    results = [verify(t.read_bytes(), sha, roots_file) for t in token_files]
    bad = [r for r in results if not r.ok]
    if bad:
        return FileVerification(subject="bundle", path=name, ok=False, problem=bad[0].reason, tokens=len(results))
    first = min(results, key=lambda r: r.stamped_at)
    return FileVerification(subject="bundle", path=name, ok=True, problem="", stamped_at=first.stamped_at,
                            tsa_name=first.tsa_name, tokens=len(results))


def _words(detail: object) -> str:
    import bagit

    if isinstance(detail, bagit.ChecksumMismatch):
        return f"the file changed: the manifest says {detail.expected}, it is now {detail.found}"
    if isinstance(detail, bagit.FileMissing):
        return "the file is missing"
    if isinstance(detail, bagit.UnexpectedFile):
        return "a file the manifest does not list (added after the bundle was made)"
    return str(detail)
