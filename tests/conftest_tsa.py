"""A real Time-Stamp Authority on 127.0.0.1: OpenSSL's `openssl ts -reply` behind a small HTTP handler,
with a CA and a TSA certificate made at test time (nothing to expire in the repository)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ tsa_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
"""


@dataclass(frozen=True)
class Tsa:
    url: str
    ca: Path  # the root that the TSA's certificate chains to (PEM)
    requests: list[bytes]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tsa(folder: Path, name: str) -> Path:
    """A CA and a TSA certificate signed by it in `folder`; returns the config for `openssl ts`."""
    folder.mkdir(parents=True)
    config = folder / "tsa.cnf"
    config.write_text(_CONFIG.format(dir=folder), encoding="utf-8")
    (folder / "serial").write_text("01\n", encoding="utf-8")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", f"/CN={name} Test Root", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
             "-subj", f"/CN={name} Test TSA", cwd=folder)
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tsa.pem", "-days", "2", "-extfile", "tsa.cnf", "-extensions", "tsa_ext", cwd=folder)
    return config


def serve_tsa(folder: Path, name: str) -> Iterator[Tsa]:
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is missing and CI is set; install it (apt-get install openssl)")
        pytest.skip("openssl is missing (apt-get install openssl); it plays the TSA")
    config = make_tsa(folder, name)
    requests: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            requests.append(query)
            reply = subprocess.run(["openssl", "ts", "-reply", "-config", str(config), "-queryfile", "/dev/stdin",
                                    "-out", "/dev/stdout"], input=query, capture_output=True, check=True).stdout
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Tsa(url=f"http://127.0.0.1:{server.server_address[1]}/tsr", ca=folder / "ca.pem", requests=requests)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[Tsa]:
    yield from serve_tsa(tmp_path / "tsa", "Desk")


@pytest.fixture
def other_tsa(tmp_path: Path) -> Iterator[Tsa]:
    """A second, unrelated TSA: its tokens must not pass for the first one's."""
    yield from serve_tsa(tmp_path / "other-tsa", "Elsewhere")
