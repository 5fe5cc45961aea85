"""What the desk accepts from a client: URLs it may fetch, uploads (size-limited, sniffed), times.

A URL sent to the server comes from someone else, so unlike on the command line even its own host
must be a public address: it is resolved here, for a clear 400 before any job starts, and the fetch
itself goes through netguard with no host exempt (Settings.trust_named_host=False), which checks
again after DNS and on every redirect, so a name that changes its answer in between gains nothing.
"""

from __future__ import annotations

import socket
from pathlib import Path

from ..errors import InputError
from ..netguard import ALLOW_FLAG, is_private, origin

DEFAULT_MAX_UPLOAD = 2 * 1024**3  # 2 GB: the default; about 20 min of 1080p at 12 Mbit/s
MAX_JSON_BODY = 1024**2  # a JSON request or a form without a file: a URL and a time, never more
MULTIPART_SLACK = 64 * 1024  # the fields and boundaries around an upload
_SNIFF_BYTES = 64


class BodyTooLarge(Exception):
    """Raised while the body is read, past the limit; the app answers 413."""


def url_refusal(url: str, *, allow_private: bool) -> str | None:
    """Why the server will not fetch `url` (one line for the client), or None."""
    text = url.strip()
    if not text.lower().startswith(("http://", "https://")):
        return f"not an http(s) URL: {text[:200]!r}; give the post's address, or upload the file"
    where = origin(text)
    if where is None:
        return f"cannot read a host in {text[:200]!r}; give the post's full address"
    if allow_private:
        return None
    host, port = where
    try:
        addresses = {str(a[4][0]) for a in socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return f"cannot resolve the host {host!r}; check the address"
    private = sorted(a for a in addresses if is_private(a))
    if private:
        return (f"refused to fetch {host}: it resolves to {private[0]}, a private or loopback address; "
                f"this server fetches only public addresses unless started with {ALLOW_FLAG}")
    return None


# Container signatures, checked on the bytes and never on the client's file name or type.
def sniff(head: bytes) -> str | None:
    """The container the first bytes announce ("mp4", "webm"...), or None for anything else."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"  # ISO BMFF: mp4, mov, m4v, 3gp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "mkv"  # Matroska, WebM
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "mpg"
    if len(head) >= 1 and head[0] == 0x47 and (len(head) < 189 or head[188] == 0x47):
        return "ts"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"  # QuickTime without an ftyp box
    return None


def sniff_file(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(max(_SNIFF_BYTES, 189))
    kind = sniff(head)
    if kind is None:
        raise InputError("the uploaded file is not a video this tool reads (MP4/MOV, WebM/MKV, AVI, FLV, "
                         "Ogg, MPEG-PS or MPEG-TS, told by its first bytes); upload the video file itself")
    return kind


def parse_time_field(value: object) -> str | None:
    """An ISO 8601 time as given, after checking it reads; None when empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError("posted_at must be an ISO 8601 time as text, e.g. 2024-10-19T08:00:00Z")
    from ..utc import parse_time

    parse_time(value)
    return value
