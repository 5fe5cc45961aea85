"""provenance: has this footage been posted before, where, when, and how was it changed?

The pipeline, step by step, and the module of each (`check` and `ingest` in pipeline.py run it end
to end; cli.py is one command per library call):

    fetch    fetch.py       a URL (yt-dlp) or a file into the evidence store; netguard.py decides what
                            a fetch may reach; ytinfo.py and snowflake.py read what the platform said
    probe    probe.py       what the container says (ffprobe)
    decode   decode.py      the frame nearest each sampling time (PyAV, skipping frames none needs; or OpenCV)
    sample   frames.py      frames at a fixed rate, the picture cut from bars and fills (content.py)
    hash     frames.py      a quality score and pHashes per frame; motion.py for near-still footage
    match    match.py       the library's hashes (hashindex.py; index.py in memory, diskindex.py in files
                            beside the library) aligned with the clip's; localfeat.py's keypoints when
                            only part of the picture is shared; presearch.py searches the first look's
                            hashes while the clip still decodes
    record   db/            repository.py writes the check, its matches and the sighting (provenance.db);
                            a check that records nothing of an SQLite library reads it through sqlite3
                            alone (readonly.py, with db/reads.py's SQL), never loading SQLAlchemy
    report   reporting/     every text a person or a machine reads: results.py (what check and ingest
                            print), audit.py, library.py (db status, export, import), and the
                            report of a recorded check or audit as HTML, JSON or Markdown

Around it: folder.py ingests a folder, audit.py runs an audit (listing.py lists the posts with yt-dlp,
gallerylist.py with gallery-dl; db/audits.py stores them). records.py holds the frozen records that
cross modules (stored.py: what the library gives back for a report); errors.py the exception tree and
exit codes; settings.py, utc.py and wording.py the shared settings, times and words for quantities.
timestamps.py, attest.py and bundle.py: trusted timestamps (--tsa), `verify` and case bundles.
api.py: the same calls as a Python class, `from provenance import Library`.
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
# numpy's OpenBLAS starts a thread per core that spins after each call: the hashing's small matrix
# products (frames.phash_many) gain nothing from them, and a check's spinning threads took ~0.06-0.2 s
# of CPU from the decoder (perf, bench/README.md "Skipping what no sampled frame needs"). Read when
# numpy loads, so set here too; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .errors import FetchError, InputError, MediaError, ProvenanceError, StoreError  # noqa: E402

__all__ = ["FetchError", "InputError", "Library", "MediaError", "ProvenanceError", "StoreError", "__version__"]


def __getattr__(name: str) -> object:
    # `Library` is loaded on first use: `import provenance` (every command's first step) stays light.
    if name == "Library":
        from .api import Library

        return Library
    raise AttributeError(f"module 'provenance' has no attribute {name!r}")
