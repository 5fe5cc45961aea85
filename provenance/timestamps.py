"""Trusted timestamps (RFC 3161): a Time-Stamp Authority signs "this SHA-256 existed at this time".

A desk's finding is challenged weeks later; a token from a TSA proves that the evidence file (or
the report) held exactly these bytes no later than the token's time, without trusting our clock or
our database. The token is over the file's own SHA-256, so anyone can check it with standard tools:
`openssl ts -verify -data FILE -in FILE.tsr -CAfile tsa-ca.pem`.

rfc3161-client (Trail of Bits, also used by sigstore) parses and verifies responses. It only builds
requests from the whole data, hashing it itself; a clip can be gigabytes and its SHA-256 is already
known, so the request (a fixed 70-odd-byte DER structure) is written here.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import FetchError, InputError
from .utc import as_utc

TSA_TIMEOUT_S = 30  # the same as a download's socket timeout (fetch.py): a TSA answers in well under 1 s
TSA_MAX_RESPONSE = 1 << 20  # a response is a few kB (token + certificate chain); more is not a TSA
_SHA256_ALGORITHM = bytes.fromhex("300d0609608648016503040201" "0500")  # AlgorithmIdentifier sha256, NULL params
_NONCE_BYTES = 8


@dataclass(frozen=True)
class Stamp:
    """A TSA's signed statement that `sha256` existed at `stamped_at`."""

    sha256: str  # hex, of the file stamped
    tsa_url: str
    response: bytes  # the TSA's whole TimeStampResp (DER): what `openssl ts -verify -in` reads
    stamped_at: datetime  # the token's genTime, UTC
    tsa_name: str  # the subject of the certificate that signed the token


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str  # why not, when not ok; "" when ok
    stamped_at: datetime | None = None
    tsa_name: str | None = None


def stamp(sha256_hex: str, tsa_url: str) -> Stamp:
    """Ask the TSA at `tsa_url` to timestamp a SHA-256; FetchError (exit 3) if it will not."""
    from rfc3161_client import decode_timestamp_response

    digest = _digest(sha256_hex)
    shown = _without_password(tsa_url)
    nonce = secrets.randbits(_NONCE_BYTES * 8 - 1) | 1  # positive and never 0: one DER form only
    answer = _post(tsa_url, _request(digest, nonce), shown=shown)
    try:
        response = decode_timestamp_response(answer)
    except ValueError as e:
        raise FetchError(f"the TSA at {shown} did not answer with a timestamp ({e}); check the TSA URL") from e
    if response.status not in (0, 1):  # granted, granted with modifications (RFC 3161 2.4.2)
        raise FetchError(f"the TSA at {shown} refused the request (status {response.status}"
                         f"{': ' + ' '.join(response.status_string) if response.status_string else ''})")
    info = response.tst_info
    if info.message_imprint.message != digest or info.nonce != nonce:
        raise FetchError(f"the TSA at {shown} answered for another request; check the TSA URL")
    return Stamp(sha256=sha256_hex, tsa_url=shown, response=answer, stamped_at=as_utc(info.gen_time),
                 tsa_name=_signer_name(response))


def verify(response: bytes, sha256_hex: str, roots_file: Path | None = None) -> Verification:
    """Whether `response` is a valid token over `sha256_hex` signed by a TSA whose certificate chains
    to one of the roots in `roots_file` (PEM; default: this machine's CA bundle)."""
    from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        decoded = decode_timestamp_response(response)
    except ValueError as e:
        return Verification(ok=False, reason=f"the stored token is damaged ({e})")
    builder = VerifierBuilder()
    for root in load_roots(roots_file):
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify(decoded, _digest(sha256_hex))
    except VerificationError as e:
        return Verification(ok=False, reason=_why(str(e), roots_file))
    return Verification(ok=True, reason="", stamped_at=as_utc(decoded.tst_info.gen_time),
                        tsa_name=_signer_name(decoded))


def load_roots(roots_file: Path | None) -> list:
    """The certificates a token's chain must end in: `roots_file`, or the system's CA bundle."""
    from cryptography import x509

    path = Path(roots_file) if roots_file is not None else Path(ssl.get_default_verify_paths().cafile or "")
    try:
        with warnings.catch_warnings():  # a system bundle holds old roots that cryptography warns about
            warnings.simplefilter("ignore")
            roots = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as e:
        raise InputError(f"cannot read the TSA's CA certificates {path}: {e.strerror or e}; "
                         "give a PEM file with --tsa-ca") from e
    except ValueError as e:
        raise InputError(f"{path} holds no PEM certificate ({e}); give the TSA's CA certificate with --tsa-ca") from e
    return roots


def _why(error: str, roots_file: Path | None) -> str:
    if "Mismatch between messages" in error:
        return "the token is over other bytes than this file's: the file changed after it was stamped, or the token is not its own"
    if "certificate" in error.lower():
        roots = roots_file or "this machine's CA bundle"
        return (f"the token is not signed by a TSA whose certificate chains to the CA certificates in {roots} "
                "(another TSA, or give its CA with --tsa-ca)")
    return f"the token does not verify ({error[:200]})"


def _request(digest: bytes, nonce: int) -> bytes:
    """TimeStampReq (RFC 3161 2.4.1): version 1, the sha256 imprint, a nonce, and certReq TRUE so the
    token carries the TSA's certificate (the token can then be checked without asking the TSA)."""
    imprint = _der(0x30, _SHA256_ALGORITHM + _der(0x04, digest))
    nonce_bytes = nonce.to_bytes((nonce.bit_length() + 8) // 8, "big")  # a leading 0 bit: positive INTEGER
    return _der(0x30, _der(0x02, b"\x01") + imprint + _der(0x02, nonce_bytes) + _der(0x01, b"\xff"))


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _post(tsa_url: str, body: bytes, *, shown: str) -> bytes:
    if not tsa_url.lower().startswith(("http://", "https://")):
        raise InputError(f"the TSA URL {shown} is not http(s); give e.g. --tsa https://freetsa.org/tsr")
    # Imported here: urllib.request and http.client come with it, which a check without a TSA (every
    # check loads this module with the database layer) never uses (tests/test_startup.py).
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"}
    parts = urlsplit(tsa_url)
    if parts.username is not None:  # a TSA with a login: HTTP Basic, as curl would send it
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(login).decode("ascii")
    request = urllib.request.Request(shown, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TSA_TIMEOUT_S) as answer:
            data = answer.read(TSA_MAX_RESPONSE + 1)
    except urllib.error.HTTPError as e:
        raise FetchError(f"the TSA at {shown} answered HTTP {e.code}; check the TSA URL") from e
    except (urllib.error.URLError, OSError, ValueError) as e:  # ValueError: a URL urllib cannot parse
        reason = getattr(e, "reason", None) or e
        raise FetchError(f"cannot reach the TSA at {shown} ({reason}); check the URL and the network") from e
    if len(data) > TSA_MAX_RESPONSE:
        raise FetchError(f"the TSA at {shown} sent more than {TSA_MAX_RESPONSE} bytes; it is not a timestamp")
    return data


def _without_password(url: str) -> str:
    """The URL as it may be stored and shown: a TSA that wants a login gets it in the URL, and
    secrets are never stored."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if "@" in parts.netloc else url


def _digest(sha256_hex: str) -> bytes:
    digest = bytes.fromhex(sha256_hex)
    if len(digest) != 32:
        raise ValueError(f"not a SHA-256: {sha256_hex!r}")
    return digest




def _signer_name(response) -> str:
    from cryptography import x509

    (signer,) = response.signed_data.signer_infos
    for der in response.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if cert.issuer == signer.issuer and cert.serial_number == signer.serial_number:
            return cert.subject.rfc4514_string()
    return signer.issuer.rfc4514_string()  # no certificate in the token: name its issuer
