"""provenance: has this footage been posted before, where, when, and how was it changed?

The pipeline is fetch -> probe -> sample/hash -> match -> record -> report; `check` and `ingest`
in provenance.pipeline run it end to end.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import FetchError, InputError, MediaError, ProvenanceError, StoreError  # noqa: E402

__all__ = ["FetchError", "InputError", "MediaError", "ProvenanceError", "StoreError", "__version__"]
