"""C2PA content credentials: read the manifest a camera, phone, editor or platform signed into a
clip (c2pa-python, the Content Authenticity Initiative's reader), and the red flags it raises.

What a manifest proves: that whoever held the signing key made these claims about these exact bytes
(state "valid"), and, against a trust list, who that was ("trusted"). It does not prove that the
claims are true: a "created" date is what the signer's clock said. Read offline: no remote manifest
and no OCSP fetch, so a clip from the internet cannot make the tool connect anywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .records import Signal
from .utc import parse_iso
from .wording import gap_words

# A manifest whose "created" action is this much older than the post: the footage was recorded (or
# at least signed) well before it was posted. News footage is usually posted within hours; a day
# allows for time zones, slow uploads and clocks set a few hours off. A judgment call, like
# reporting.flags.CREATION_TIME_MAX_GAP; the gap is shown either way.
CREATED_BEFORE_POST_MAX_GAP = timedelta(days=1)
# A "created" time after the post time cannot be right for the posted file unless a clock is wrong
# or the file was re-signed later: an hour covers clocks a little off.
CREATED_AFTER_POST_MAX_GAP = timedelta(hours=1)
# Trust anchors (a PEM bundle, e.g. the C2PA trust list) to tell "trusted" from merely "valid".
TRUST_ANCHORS_ENV = "PROVENANCE_C2PA_TRUST"

# The reader's validation states (c2pa-rs): the signature and hashes hold; they hold and the signer
# chains to a trust anchor; or something does not hold.
VALID, TRUSTED, INVALID = "valid", "trusted", "invalid"
_CREATED_ACTIONS = ("c2pa.created",)


@dataclass(frozen=True)
class CredentialAction:
    action: str  # e.g. "c2pa.created", "c2pa.edited", "c2pa.published"
    when: str | None  # as written in the manifest (ISO 8601), unparsed
    software_agent: str | None
    digital_source_type: str | None  # e.g. .../digitalCapture, .../trainedAlgorithmicMedia


@dataclass(frozen=True)
class ContentCredentials:
    """The active manifest of a clip, as the reader validated it when the clip was read."""

    state: str  # VALID | TRUSTED | INVALID
    signer: str | None  # the signing certificate's common name
    issuer: str | None  # its issuer's organisation
    signed_at: str | None  # the signature's trusted timestamp, if it has one
    claim_generator: str | None  # the software that made the claim
    title: str | None
    actions: tuple[CredentialAction, ...]
    ingredients: tuple[str, ...]  # titles of the files this one was made from
    failures: tuple[str, ...]  # "code: explanation" of each validation failure
    reader: str  # "c2pa-rs VERSION": validation rules change between versions
    manifest: dict[str, Any]  # the whole manifest store as the reader gave it (for bundles)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's `content_credentials` object (without the raw manifest store)."""
        data = asdict(self)
        data.pop("manifest")
        return data

    @property
    def created_at(self) -> datetime | None:
        """When the manifest says the footage was created, if it says so in a readable form."""
        for a in self.actions:
            if a.action in _CREATED_ACTIONS and a.when:
                try:
                    return parse_iso(a.when)
                except ValueError:
                    return None
        return None


@dataclass(frozen=True)
class CredentialsReading:
    """What reading a clip for credentials found, and when: `credentials` None means it carries none."""

    read_at: datetime
    reader: str  # "c2pa-rs VERSION": validation rules change between versions
    credentials: ContentCredentials | None


def read_credentials(path: Path) -> CredentialsReading:
    """The clip's C2PA manifest, validated; none when it carries none (most clips) or its format is
    one C2PA cannot hold. A manifest present but unreadable comes back INVALID, not as none: a broken
    manifest is itself something to look at."""
    import c2pa  # a native library: loaded only when a clip is read

    reader_name = f"c2pa-rs {c2pa.sdk_version()}"
    read_at = datetime.now(UTC)
    try:
        reader = c2pa.Reader.try_create(str(path), context=_context(c2pa))
    except c2pa.C2paError.NotSupported:
        reader = None
    except c2pa.C2paError as e:
        return CredentialsReading(read_at, reader_name, _unreadable(str(e), reader_name))
    if reader is None:
        return CredentialsReading(read_at, reader_name, None)
    with reader:
        store = json.loads(reader.json())
        state = (reader.get_validation_state() or INVALID).lower()
        results = reader.get_validation_results() or {}
    return CredentialsReading(read_at, reader_name, _from_store(store, state, results, reader_name))


def credential_signals(credentials: ContentCredentials | None, posted_at: datetime | None) -> tuple[Signal, ...]:
    """Red flags from a manifest: present but invalid; or "created" long before, or after, the post."""
    if credentials is None:
        return ()
    signals = []
    if credentials.state == INVALID:
        failures = "; ".join(credentials.failures) or "no reason given"
        signals.append(Signal(
            kind="c2pa_invalid",
            detail=("the clip carries C2PA content credentials that do not validate: the file was changed after "
                    f"it was signed, or the credentials are broken or forged ({failures})"),
            data={"failures": list(credentials.failures), "signer": credentials.signer}))
    created = credentials.created_at
    if created is not None and posted_at is not None:
        if posted_at - created > CREATED_BEFORE_POST_MAX_GAP:
            signals.append(_created_signal("c2pa_created_before_post", created, posted_at,
                                           "before the post: older footage, if the signer's clock was right"))
        elif created - posted_at > CREATED_AFTER_POST_MAX_GAP:
            signals.append(_created_signal("c2pa_created_after_post", created, posted_at,
                                           "after the post: a clock was wrong, or the file was signed again after "
                                           "it was posted"))
    return tuple(signals)


def _created_signal(kind: str, created: datetime, posted_at: datetime, meaning: str) -> Signal:
    gap = abs(posted_at - created)
    return Signal(kind=kind,
                  detail=(f"the clip's content credentials say it was created {created:%Y-%m-%d %H:%M} UTC, "
                          f"{gap_words(gap)} {meaning}"),
                  data={"created_at": created, "posted_at": posted_at, "gap_s": gap.total_seconds()})


def credentials_from_dict(data: dict[str, Any], manifest: dict[str, Any] | None = None) -> ContentCredentials:
    """The inverse of ContentCredentials.to_dict, for credentials read back from the library."""
    return ContentCredentials(
        state=data["state"], signer=data.get("signer"), issuer=data.get("issuer"), signed_at=data.get("signed_at"),
        claim_generator=data.get("claim_generator"), title=data.get("title"),
        actions=tuple(CredentialAction(**a) for a in data.get("actions", ())),
        ingredients=tuple(data.get("ingredients", ())), failures=tuple(data.get("failures", ())),
        reader=data.get("reader", ""), manifest=manifest or {})


def _context(c2pa: Any) -> Any:
    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    anchors = os.environ.get(TRUST_ANCHORS_ENV)
    if anchors:
        from .errors import InputError

        try:
            settings["trust"] = {"trust_anchors": Path(anchors).read_text()}
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the C2PA trust anchors {TRUST_ANCHORS_ENV}={anchors}: "
                             f"{e.__class__.__name__}; give a PEM file or unset it") from e
    return c2pa.Context(c2pa.Settings.from_dict(settings))


def _from_store(store: dict[str, Any], state: str, results: dict[str, Any], reader: str) -> ContentCredentials:
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "", {})
    signature = manifest.get("signature_info") or {}
    actions = []
    for assertion in manifest.get("assertions") or ():
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for a in (assertion.get("data") or {}).get("actions") or ():
                actions.append(CredentialAction(
                    action=str(a.get("action", "")), when=_text(a.get("when")),
                    software_agent=_agent(a.get("softwareAgent")), digital_source_type=_text(a.get("digitalSourceType"))))
    failures = [f"{f.get('code')}: {f.get('explanation')}"
                for f in (results.get("activeManifest") or {}).get("failure") or ()
                # Untrusted is not a failure of the file: it says only that no trust anchor was given for
                # the signer; the state ("valid" rather than "trusted") already says it.
                if f.get("code") != "signingCredential.untrusted"]
    generators = manifest.get("claim_generator_info") or ()
    generator = (" ".join(filter(None, (_text(generators[0].get("name")), _text(generators[0].get("version")))))
                 if generators else _text(manifest.get("claim_generator")))
    return ContentCredentials(
        state=state if state in (VALID, TRUSTED) else INVALID, signer=_text(signature.get("common_name")),
        issuer=_text(signature.get("issuer")), signed_at=_text(signature.get("time")),
        claim_generator=generator or None, title=_text(manifest.get("title")), actions=tuple(actions),
        ingredients=tuple(_text(i.get("title")) or "(untitled)" for i in manifest.get("ingredients") or ()),
        failures=tuple(failures), reader=reader, manifest=store)


def _unreadable(error: str, reader: str) -> ContentCredentials:
    return ContentCredentials(state=INVALID, signer=None, issuer=None, signed_at=None, claim_generator=None,
                              title=None, actions=(), ingredients=(), failures=(f"unreadable: {error}",),
                              reader=reader, manifest={})


def _agent(value: Any) -> str | None:
    if isinstance(value, dict):
        return _text(" ".join(filter(None, (_text(value.get("name")), _text(value.get("version"))))))
    return _text(value)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
