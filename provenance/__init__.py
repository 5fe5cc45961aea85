"""provenance: has this footage been posted before, where, when, and how was it changed?

The pipeline is fetch -> probe -> sample/hash -> match -> record -> report; `check` and `ingest`
in provenance.pipeline run it end to end.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

# OpenCV's FFmpeg decoder logs every damaged macroblock to stderr ("[h264 @ 0x...] error while
# decoding MB"): dozens of lines before our one-line error, or even with a clean exit. Read once,
# when cv2 loads, so set here, before any module imports it. AV_LOG_FATAL (8) keeps only what comes
# before a crash; a user can still set both variables to see everything.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

from .errors import FetchError, InputError, MediaError, ProvenanceError, StoreError  # noqa: E402

__all__ = ["FetchError", "InputError", "Library", "MediaError", "ProvenanceError", "StoreError", "__version__"]


def __getattr__(name: str) -> object:
    # `Library` is loaded on first use: `import provenance` (every command's first step) stays light.
    if name == "Library":
        from .api import Library

        return Library
    raise AttributeError(f"module 'provenance' has no attribute {name!r}")
