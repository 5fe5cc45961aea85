"""Every error a user can see, with the exit code the CLI uses for it.

    ProvenanceError          1  .exit_code, .message meant for a person
      InputError             2  missing or empty file, unsupported URL, bad option value
      FetchError             3  the platform refused or failed: 404, private, deleted, login or cookies needed
        RateLimitedError     3  HTTP 429: the site asks us to slow down (.retry_after, seconds, if it said)
      MediaError             4  not a video, truncated or undecodable, no usable frames
      StoreError             5  database unreachable or schema out of date
      EvidenceError          6  `verify`: an evidence file changed or is missing, or a timestamp does not verify

Library code raises these and never exits or prints; third-party errors are wrapped once,
where they are called (``raise FetchError(...) from e``).
"""

from __future__ import annotations

import os


class ProvenanceError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        # One line: the CLI prints it as is, so keep newlines out of user-facing text; and a file name
        # that is not UTF-8 escaped, or printing the message would fail.
        self.message = printable(" ".join(message.split()))
        super().__init__(self.message)


class InputError(ProvenanceError):
    exit_code = 2


class FetchError(ProvenanceError):
    exit_code = 3


class RateLimitedError(FetchError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MediaError(ProvenanceError):
    exit_code = 4


class StoreError(ProvenanceError):
    exit_code = 5


class EvidenceError(ProvenanceError):
    exit_code = 6


def printable(text: str | os.PathLike[str]) -> str:
    """A file name, path or message as it can be printed, stored and encoded: bytes of a name that
    are not UTF-8 (Python holds them as lone surrogates, which every encoder refuses) become \\xNN
    escapes, so the name stays recognisable and tells which bytes were odd."""
    text = os.fspath(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the undecodable bytes of a file name, back as bytes
    except UnicodeEncodeError:  # a surrogate that did not come from a file name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
