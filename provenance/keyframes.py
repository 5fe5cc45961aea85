"""Keyframes for reverse image search: one frame per shot of a checked clip, as JPEG files, and the
ways to search for them (InVID's most used feature: how a desk finds earlier copies that are not yet
in its own library).

The shots were found while the clip was hashed (provenance.shots); writing the files seeks to each
keyframe in the evidence file, one frame each, with no second decode of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from .errors import InputError
from .fetch import sha256_file
from .settings import Settings
from .shots import Shot

JPEG_QUALITY = 92  # reverse image search engines match better on a clean frame than a small file

# Each engine's page for searching by an image's URL (the platform's own thumbnail), and where to
# upload a file for the keyframes written here. Engines change these pages; the steps say what to do.
SEARCH_BY_URL = (
    ("Google Lens", "https://lens.google.com/uploadbyurl?url={url}"),
    ("Yandex Images", "https://yandex.com/images/search?rpt=imageview&url={url}"),
    ("Bing Visual Search", "https://www.bing.com/images/search?view=detailv2&iss=sbi&q=imgurl:{url}"),
    ("TinEye", "https://tineye.com/search?url={url}"),
)
UPLOAD_STEPS = (
    ("Google Lens", "https://lens.google.com/", "open it, choose \"upload a file\" and pick the keyframe"),
    ("Yandex Images", "https://yandex.com/images/", "click the camera icon, then \"Select a file\""),
    ("Bing Visual Search", "https://www.bing.com/visualsearch", "drag the keyframe onto the page or browse to it"),
    ("TinEye", "https://tineye.com/", "click the upload arrow and pick the keyframe; sort by oldest to find the first copy"),
)


@dataclass(frozen=True)
class KeyframeFile:
    path: Path
    shot: Shot
    sha256: str


def search_links(image_url: str | None) -> tuple[tuple[str, str], ...]:
    """(engine, search URL) for an image on the web, e.g. the platform's thumbnail; none for a URL
    that is not plain http(s), so a hostile value cannot become a javascript: link."""
    if not image_url or urlsplit(image_url).scheme not in ("http", "https"):
        return ()
    encoded = quote(image_url, safe="")
    return tuple((engine, template.format(url=encoded)) for engine, template in SEARCH_BY_URL)


def file_name(number: int, shot: Shot) -> str:
    minutes, seconds = divmod(shot.keyframe_s, 60.0)
    return f"keyframe-{number:02d}-at-{int(minutes)}m{seconds:05.2f}s.jpg"


def write_keyframes(check_id: int, out_dir: Path, *, settings: Settings) -> tuple[KeyframeFile, ...]:
    """Write one JPEG per shot of check `check_id`'s clip into `out_dir` (made if missing)."""
    import cv2

    from .reporting.build import load_check

    stored = load_check(check_id, settings=settings)
    if not stored.shots:
        raise InputError(f"check {check_id}'s clip was recorded before shots were found, so it has no keyframes; "
                         "check the clip again with this version to find them")
    evidence = Path(stored.clip.evidence_path) if stored.clip.evidence_path else None
    if evidence is None or not evidence.is_file():
        raise InputError(f"the evidence file of check {check_id} is gone ({stored.clip.evidence_path}); "
                         "keyframes are cut from it: restore the evidence store")
    names = [file_name(n, shot) for n, shot in enumerate(stored.shots, start=1)]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot make the folder {out_dir}: {e.strerror or e}; choose another") from e
    clash = next((n for n in names if (out_dir / n).exists()), None)
    if clash is not None:
        raise InputError(f"{out_dir / clash} already exists; give an empty folder for the keyframes")
    cap = cv2.VideoCapture(str(evidence))
    written = []
    try:
        for name, shot in zip(names, stored.shots, strict=True):
            cap.set(cv2.CAP_PROP_POS_MSEC, shot.keyframe_s * 1000.0)
            ok, image = cap.read()
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]) if ok else (False, None)
            if not ok:
                continue  # a frame the decoder cannot reach again: the others still help
            path = out_dir / name
            path.write_bytes(jpeg.tobytes())
            written.append(KeyframeFile(path=path, shot=shot, sha256=sha256_file(path)))
    finally:
        cap.release()
    return tuple(written)
