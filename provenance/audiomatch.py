"""Matching and placing audio: a query's Chromaprint sub-fingerprints against the library's.

1. Candidates: library items that agree exactly with a query item on its upper or lower 16 bits
   (two sorted tables, as hashindex does for frames). A copy re-encoded at 32 kbit/s keeps about a
   third of its items within that rule, unrelated sound about 1 in 32,000 per item and half.
2. Votes: each candidate says "reference item = query item + d"; the (clip, d) with most votes,
   per query print (one per speed undone, audio.QUERY_SPEEDS), are the lines worth verifying.
3. Verify and place: the line is refitted on its votes (slope: what remains of the speed), and the
   query's items are compared bit by bit with the reference items on it. Stretches whose bit error
   rate (over SMOOTH_ITEMS) stays under MAX_BIT_ERROR_RATE are the segments, with times on both
   sides; the similarity is 1 - 2 x their bit error rate (1: identical, 0: unrelated sound).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .audio import ITEM_S, AudioFingerprint, AudioPrint, AudioStatus
from .records import AudioMatch, Segment, SoundEvidence, SoundHint


class PictureMatch(Protocol):
    """What combining needs of a picture match: records.Match, or a stored one's view."""

    @property
    def sha256(self) -> str: ...

    @property
    def segments(self) -> tuple[Segment, ...]: ...

# Chromaprint's item i describes audio from i x ITEM_S to this much later: frames i..i+19 (16-frame
# classifiers over a 5-tap chroma filter) of 4096 samples, (19 x 1365 + 4096) / 11025 s. A 5-s clip
# has 19 items, the last ending at 4.95 s.
ITEM_SPAN_S = (19 * 1365 + 4096) / 11025
# A 16-bit key shared by this many library items says nothing (silence, a constant tone: Chromaprint
# gives one value throughout, 8 items a second): such keys give no candidates. Tune set of
# bench/audio.py: 2,315 items of real sound, at most 7 items on one key; a minute of digital silence
# puts 480 on one. 2,000 leaves room for a library 300 times larger before real keys are dropped.
MAX_KEY_ITEMS = 2000
# Lines verified per query print: the strongest by votes.
LINES_PER_PRINT = 4
# A line needs this many votes to be verified (one vote is chance: 2 keys x 2^-16 per item pair).
MIN_VOTES = 3
# Votes within this many items of the line count for the refit of its slope: 1.55% of speed left
# (QUERY_SPEEDS' half step) drifts 3.5 items over a 28-s clip, +/-1.8 about its middle.
REFIT_ITEMS = 3
# A refit slope further than this from 1 is a fit on noise, and the line stays as voted: nearly twice what
# the speed grid leaves (audio.QUERY_SPEEDS' half step, 1.55%). Tune set: at 0.015 a query 2% off a
# print's speed was found but placed within 0.2 s only 5 times in 10 (its true slope was refused),
# at 0.03 9 in 10; at 1.5% off, 9 and 10 in 10.
MAX_REFIT_SLOPE_DEV = 0.03
# Smoothing window of the per-item bit error rate: 8 items, 1 s.
SMOOTH_ITEMS = 8
# Bit error rate (smoothed) under which an item is on a matched stretch. Tune set (bench/audio.py):
# every edit (32 kbit/s, up to 1.55% of pitch left by QUERY_SPEEDS, music under at -12 dB) was found
# with it; a re-encode alone gives 0.04, 1% of pitch 0.17. Unrelated sound (other parts of the film,
# other music, the same speaker's other words, espeak-ng) averages 0.33-0.5, and its best 1-s window
# over every offset of the library reaches 0.22-0.29: hence MIN_MATCHED_ITEMS too.
MAX_BIT_ERROR_RATE = 0.25
# Stretches closer than this (items) are one segment: a short burst of noise or a cut in the edit.
MAX_GAP_ITEMS = 8
# A match needs matched items over this many query items (2 s of items, 4.7 s of sound with the
# items' span): a 5-s excerpt is found; on the tune set no unrelated line reached it.
MIN_MATCHED_ITEMS = 16


@dataclass(frozen=True)
class AudioLibrary:
    """The library's sub-fingerprints, flattened per clip, with the two key tables of step 1."""

    clip_ids: Any  # np.ndarray[int64], one per item, sorted by clip then item
    values: Any  # np.ndarray[uint32]
    starts: dict[int, tuple[int, int]]  # clip id -> [start, end) rows
    sha256_of: dict[int, str]
    keys: tuple[tuple[Any, Any], ...] = field(default=(), compare=False)  # (sorted keys, rows) per half

    @property
    def items(self) -> int:
        return int(self.values.size)


def build_library(clip_ids: Any, values: Any, sha256_of: dict[int, str]) -> AudioLibrary:
    """`clip_ids`, `values`: one per item, each clip's items in time order and together."""
    clip_ids = np.asarray(clip_ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.uint32)
    starts: dict[int, tuple[int, int]] = {}
    if clip_ids.size:
        edges = np.flatnonzero(np.diff(clip_ids)) + 1
        bounds = np.concatenate(([0], edges, [clip_ids.size]))
        starts = {int(clip_ids[a]): (int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])}
    # As uint16: NumPy's stable sort of 16-bit keys is a radix sort, 4 times faster than of the same
    # keys as uint32 (1M items: 0.07 s against 0.31 s), and the library's keys are sorted in every
    # process that opens it.
    keys = tuple(_key_table(half.astype(np.uint16)) for half in (values >> 16, values & 0xFFFF))
    return AudioLibrary(clip_ids=clip_ids, values=values, starts=starts, sha256_of=sha256_of, keys=keys)


def _key_table(keys: Any) -> tuple[Any, Any]:
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def find_audio(query: AudioFingerprint, library: AudioLibrary, *,
               exclude_sha256: str | None = None) -> tuple[AudioMatch, ...]:
    """The library clips whose sound this query contains, best first (matched items x similarity)."""
    if not query.has_evidence or library.items == 0:
        return ()
    best: dict[int, AudioMatch] = {}
    for qp in query.prints:
        for clip_id, d in _lines(qp.values, library):
            if library.sha256_of.get(clip_id) == exclude_sha256:
                continue
            found = _verify(qp, clip_id, d, library)
            if found is not None and (clip_id not in best or _strength(found) > _strength(best[clip_id])):
                best[clip_id] = found
    return tuple(sorted(best.values(), key=_strength, reverse=True))


def _strength(m: AudioMatch) -> float:
    return m.matched_items * m.similarity


def _candidates(q: Any, library: AudioLibrary) -> tuple[Any, Any]:
    """(query item, library row) pairs sharing a 16-bit half."""
    qi_all, rows_all = [], []
    halves = ((q >> 16).astype(np.uint16), (q & 0xFFFF).astype(np.uint16))  # the tables' dtype: no copy of them
    for (sorted_keys, order), half in zip(library.keys, halves):
        lo = np.searchsorted(sorted_keys, half, side="left")
        hi = np.searchsorted(sorted_keys, half, side="right")
        n = hi - lo
        n[n > MAX_KEY_ITEMS] = 0
        total = int(n.sum())
        if total == 0:
            continue
        qi = np.repeat(np.arange(q.size), n)
        first = np.repeat(lo - np.concatenate(([0], np.cumsum(n)[:-1])), n)
        qi_all.append(qi)
        rows_all.append(order[first + np.arange(total)])
    if not qi_all:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(qi_all), np.concatenate(rows_all)


def _lines(q: Any, library: AudioLibrary) -> list[tuple[int, int]]:
    """The (clip id, d) lines with most votes: reference item = query item + d."""
    qi, rows = _candidates(q, library)
    if qi.size == 0:
        return []
    clip = library.clip_ids[rows]
    first_row = np.array([library.starts[int(c)][0] for c in np.unique(clip)])
    item = rows - first_row[np.searchsorted(np.unique(clip), clip)]
    d = item - qi
    pairs = np.stack([clip, d], axis=1)
    uniq, votes = np.unique(pairs, axis=0, return_counts=True)
    # A pair on both halves is one item agreeing, and a line drifting by one item is the same line:
    # votes of neighbouring d count together.
    strong = np.argsort(votes)[::-1]
    lines: list[tuple[int, int]] = []
    for k in strong:
        if votes[k] < MIN_VOTES or len(lines) >= LINES_PER_PRINT:
            break
        c, dd = int(uniq[k, 0]), int(uniq[k, 1])
        if any(c == lc and abs(dd - ld) <= REFIT_ITEMS for lc, ld in lines):
            continue
        lines.append((c, dd))
    return lines


def _verify(qp: AudioPrint, clip_id: int, d: int, library: AudioLibrary) -> AudioMatch | None:
    start, end = library.starts[clip_id]
    ref = library.values[start:end]
    q = qp.values
    slope, intercept = _refit(q, ref, d)
    i = np.arange(q.size)
    j = np.rint(slope * i + intercept).astype(np.int64)
    inside = (j >= 0) & (j < ref.size)
    if int(inside.sum()) < MIN_MATCHED_ITEMS:
        return None
    errors = np.full(q.size, 32.0)
    errors[inside] = np.bitwise_count(q[inside] ^ ref[j[inside]])
    rate = _smoothed(errors / 32.0, inside)
    on = inside & (rate < MAX_BIT_ERROR_RATE)
    runs = _runs(on)
    if not runs:
        return None
    matched = sum(b - a for a, b in runs)
    if matched < MIN_MATCHED_ITEMS:
        return None
    mask = np.zeros(q.size, dtype=bool)
    for a, b in runs:
        mask[a:b] = True
    ber = float(errors[mask].mean() / 32.0)
    speed = qp.speed * slope
    segments = tuple(_segment(a, b, qp.speed, slope, intercept) for a, b in runs)
    first = segments[0]
    return AudioMatch(
        sha256=library.sha256_of[clip_id], similarity=round(max(0.0, min(1.0, 1.0 - 2.0 * ber)), 4),
        segments=segments, offset_s=round(first.reference_start_s - speed * first.query_start_s, 3),
        speed=round(speed, 4), matched_items=matched, query_items=int(q.size), reference_items=int(ref.size),
        query_coverage=round(matched / q.size, 4),
        reference_coverage=round(min(1.0, matched * slope / ref.size), 4))


def _refit(q: Any, ref: Any, d: int) -> tuple[float, float]:
    """Slope and intercept of the line through the exactly-agreeing items near d (a least-squares
    fit); the line as voted when too few agree."""
    i = np.arange(q.size)
    pts_i, pts_j = [], []
    for dd in range(-REFIT_ITEMS, REFIT_ITEMS + 1):
        j = i + d + dd
        ok = (j >= 0) & (j < ref.size)
        close = np.zeros(q.size, dtype=bool)
        close[ok] = np.bitwise_count(q[ok] ^ ref[j[ok]]) <= 4
        pts_i.append(i[close])
        pts_j.append(j[close])
    xi, yj = np.concatenate(pts_i), np.concatenate(pts_j)
    if xi.size < 8 or np.ptp(xi) < 16:
        return 1.0, float(d)
    slope, intercept = np.polyfit(xi, yj, 1)
    if abs(slope - 1.0) > MAX_REFIT_SLOPE_DEV:
        return 1.0, float(d)
    return float(slope), float(intercept)


def _smoothed(rate: Any, inside: Any) -> Any:
    kernel = np.ones(SMOOTH_ITEMS)
    num = np.convolve(np.where(inside, rate, 0.0), kernel, mode="same")
    den = np.convolve(inside.astype(float), kernel, mode="same")
    return np.where(den > 0, num / np.maximum(den, 1), 1.0)


def _runs(on: Any) -> list[tuple[int, int]]:
    """[start, end) runs of True, merged across gaps of MAX_GAP_ITEMS or fewer."""
    idx = np.flatnonzero(on)
    if idx.size == 0:
        return []
    runs: list[tuple[int, int]] = []
    a = prev = int(idx[0])
    for k in idx[1:]:
        k = int(k)
        if k - prev > MAX_GAP_ITEMS + 1:
            runs.append((a, prev + 1))
            a = k
        prev = k
    runs.append((a, prev + 1))
    return runs


def _segment(a: int, b: int, speed: float, slope: float, intercept: float) -> Segment:
    """Query items [a, b) of a print whose speed was undone, as times in both clips. The print's
    item i starts at i x ITEM_S / speed in the query clip, its reference item at
    (slope x i + intercept) x ITEM_S."""
    q0, q1 = a * ITEM_S / speed, ((b - 1) * ITEM_S + ITEM_SPAN_S) / speed
    r0 = (slope * a + intercept) * ITEM_S
    r1 = (slope * (b - 1) + intercept) * ITEM_S + ITEM_SPAN_S
    return Segment(query_start_s=round(q0, 3), query_end_s=round(q1, 3), reference_start_s=round(r0, 3),
                   reference_end_s=round(r1, 3), speed=round(speed * slope, 4))


# --- combining picture and sound evidence ---------------------------------------------------------

# An audio match with no picture match makes a check's verdict `reused` only when at least this
# much of the query's sound matched: longer than a shared jingle or sting (broadcast idents and
# stings run 3-10 s, and a station's jingle recurs across all its clips), and twice the longest
# sound of real speech or music that a negative of bench/audio.py matched by chance (none did at
# MIN_MATCHED_ITEMS: 4.7 s). A music bed or stock sound can run longer than this: a long audio-only
# match is also reported as the hint "sound_not_picture" for a person to judge.
AUDIO_ONLY_REUSE_MIN_S = 20.0
# Picture and sound placements of one known clip agree when they put the same query moment this
# close in the reference: frames are sampled every 0.25 s and audio items every 0.124 s; the
# placement error of either on its benchmark stays under 0.1 s.
OFFSET_AGREE_S = 0.5
# A picture match says nothing about the sound unless this much of the query was matched: shorter
# than the sound matcher's own minimum (MIN_MATCHED_ITEMS, 4.7 s), its silence would be expected.
PICTURE_FOR_SOUND_HINT_S = 8.0


def verdict_matches(sound: SoundEvidence) -> tuple[AudioMatch, ...]:
    """The audio matches long enough to decide a verdict on their own (AUDIO_ONLY_REUSE_MIN_S)."""
    return tuple(m for m in sound.matches if m.matched_s >= AUDIO_ONLY_REUSE_MIN_S)


def combine(status: str, detail: str, found: tuple[AudioMatch, ...], pictures: Sequence[PictureMatch],
            reference_sound: dict[str, tuple[str, str | None] | None]) -> SoundEvidence:
    """The sound evidence of a check (the query's audio `status` and why it has none, and what its
    sound matched), with the hints from comparing it with the picture matches. `reference_sound`:
    per picture-matched clip, its stored audio status (None: never fingerprinted)."""
    hints: list[SoundHint] = []
    by_sha = {m.sha256: m for m in found}
    has_evidence = status == AudioStatus.OK
    for p in pictures:
        a = by_sha.get(p.sha256)
        if a is not None:
            hints.append(_both(p, a))
            continue
        ref = reference_sound.get(p.sha256)
        shown = sum(s.query_end_s - s.query_start_s for s in p.segments)
        if has_evidence and ref is not None and ref[0] == AudioStatus.OK and shown >= PICTURE_FOR_SOUND_HINT_S:
            hints.append(SoundHint(
                kind="picture_not_sound", sha256=p.sha256,
                detail=(f"the pictures match {p.sha256[:12]} over {shown:.1f} s, but the sound does not: the sound "
                        "may have been replaced or dubbed")))
    picture_shas = {p.sha256 for p in pictures}
    for a in found:
        if a.sha256 not in picture_shas:
            hints.append(SoundHint(
                kind="sound_not_picture", sha256=a.sha256,
                detail=(f"the sound matches {a.sha256[:12]} over {a.matched_s:.1f} s, but the pictures do not: old "
                        "sound under new pictures, or a shared music bed or stock sound")))
    return SoundEvidence(status=str(status), detail="" if has_evidence else detail, matches=found, hints=tuple(hints))


def _both(p: PictureMatch, a: AudioMatch) -> SoundHint:
    gap = _placement_gap(p, a)
    if gap is not None and gap <= OFFSET_AGREE_S:
        return SoundHint(kind="both_agree", sha256=p.sha256, offset_gap_s=round(gap, 3),
                         detail=(f"pictures and sound both match {p.sha256[:12]} and place this clip at the same "
                                 f"moment of it (within {gap:.2f} s): the strongest evidence"))
    shown = "" if gap is None else f" ({gap:.1f} s apart)"
    return SoundHint(kind="both_disagree", sha256=p.sha256, offset_gap_s=round(gap, 3) if gap is not None else None,
                     detail=(f"pictures and sound both match {p.sha256[:12]} but at different moments of it{shown}: "
                             "re-edited, or sound laid over from elsewhere in that clip"))


def _placement_gap(p: PictureMatch, a: AudioMatch) -> float | None:
    """How far apart the two matches put the middle of the sound's first segment in the reference."""
    s = a.segments[0]
    q = (s.query_start_s + s.query_end_s) / 2
    by_sound = s.reference_start_s + s.speed * (q - s.query_start_s)
    pics = sorted(p.segments, key=lambda g: 0.0 if g.query_start_s <= q <= g.query_end_s
                  else min(abs(q - g.query_start_s), abs(q - g.query_end_s)))
    if not pics:
        return None
    g = pics[0]
    by_picture = g.reference_start_s + g.speed * (q - g.query_start_s)
    return abs(by_picture - by_sound)


def constants() -> dict[str, object]:
    """Every setting of the sound's fingerprint and matching, by name, for a check's params."""
    names = ("ITEM_SPAN_S", "MAX_KEY_ITEMS", "LINES_PER_PRINT", "MIN_VOTES", "REFIT_ITEMS",
             "MAX_REFIT_SLOPE_DEV", "SMOOTH_ITEMS",
             "MAX_BIT_ERROR_RATE", "MAX_GAP_ITEMS", "MIN_MATCHED_ITEMS", "AUDIO_ONLY_REUSE_MIN_S", "OFFSET_AGREE_S",
             "PICTURE_FOR_SOUND_HINT_S")
    from . import audio

    out: dict[str, object] = {f"audiomatch.{n}": globals()[n] for n in names}
    out.update({f"audio.{n}": getattr(audio, n) for n in ("SAMPLE_RATE", "ALGORITHM", "ITEM_S", "QUERY_SPEEDS",
                                                          "QUERY_SPEED_STEP",
                                                          "SILENCE_MAX_VOLUME_DB", "MIN_ITEMS")})
    return out
