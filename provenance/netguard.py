"""Which addresses a fetch may reach: no private network reached from a page on the internet.

A page chooses what yt-dlp fetches next (JSON-LD `contentUrl`, `og:video`, a redirect, an HLS
playlist's segments), so a hostile page could make the tool request any port of the analyst's
machine or office network (SSRF). The rule: a loopback, private, link-local or otherwise
non-global address may be reached only at the host and port the user named themselves (the URL
typed on the command line, or the listing an audit was given), or anywhere with
`--allow-private-urls`.

It is enforced where the connections are made, not on URLs: yt-dlp is pointed at a SOCKS5 proxy
in this process (`Guard`), which resolves each host itself, checks the address it is about to
connect to, and pipes the bytes. So redirects, every fragment and DNS names that resolve to a
private address are all covered, and what is checked is what is connected to.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import select
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

log = logging.getLogger("provenance.netguard")

ALLOW_FLAG = "--allow-private-urls"
_CONNECT_TIMEOUT_S = 30  # the same as yt-dlp's socket_timeout in fetch.py
_IDLE_TIMEOUT_S = 300  # a piped connection silent this long is dropped; yt-dlp gives up after 30 s anyway
_PIPE_CHUNK = 1 << 16
# yt-dlp hands an HLS stream it cannot fetch itself (a live one, SAMPLE-AES) to ffmpeg, saying so in
# a warning just before. ffmpeg connects on its own and ignores a SOCKS proxy, so the guard would be
# bypassed: the warning is the last moment to stop it (yt-dlp has no option to forbid the hand-off).
_HANDED_TO = re.compile(r"extraction will be delegated to (\w+)")
# SOCKS5 (RFC 1928) codes used here.
_VERSION, _NO_AUTH, _NO_METHOD, _CMD_CONNECT = 5, 0, 0xFF, 1
_ATYP_IPV4, _ATYP_NAME, _ATYP_IPV6 = 1, 3, 4
_OK, _FAILURE, _NOT_ALLOWED, _HOST_UNREACHABLE, _REFUSED, _CMD_UNSUPPORTED = 0, 1, 2, 4, 5, 7


def is_private(address: str) -> bool:
    """True for an address that is not on the public internet: loopback, RFC 1918, link-local,
    carrier-grade NAT, unspecified, multicast, reserved (IPv4-mapped IPv6 included)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def origin(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) URL, the port filled in from the scheme; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    return (host, port) if host and port else None


@dataclass
class Guard:
    """The policy and, once started, the proxy that enforces it for one fetch."""

    typed: tuple[str, int] | None  # the host and port the user named: reachable whatever its address
    allow_private: bool = False
    refused: list[str] = field(default_factory=list)  # "host:port (address)" of each refused connection
    handed_to: str | None = None  # the program yt-dlp tried to hand the download to, when refused

    def allows(self, host: str, port: int, address: str) -> bool:
        return self.allow_private or (host.lower(), port) == self.typed or not is_private(address)

    def check_hand_off(self, ytdlp_warning: str) -> None:
        """Raise UnguardedDownload if this yt-dlp warning announces a download by another program,
        which would connect around the guard; with allow_private there is nothing to guard."""
        found = _HANDED_TO.search(ytdlp_warning)
        if found and not self.allow_private:
            self.handed_to = found.group(1)
            raise UnguardedDownload(self.handed_to)

    def refusal(self) -> str | None:
        """One line for the user naming what was refused and the flag, or None."""
        if self.handed_to is not None:
            return (f"refused to let {self.handed_to} download this stream (live or SAMPLE-AES HLS): it would "
                    f"connect around the check that keeps pages away from private addresses; if you trust "
                    f"the page, rerun with {ALLOW_FLAG}")
        if not self.refused:
            return None
        return (f"refused to connect to {self.refused[0]}, a private or loopback address that the page, not "
                f"you, pointed to; if you trust it, rerun with {ALLOW_FLAG}")


class UnguardedDownload(Exception):
    """Raised inside yt-dlp to stop a download another program would make around the guard."""


@contextmanager
def guarded(guard: Guard) -> Iterator[str]:
    """Run the guard's proxy for the block; yields the proxy URL to give yt-dlp (`proxy` option)."""
    server = _Server(("127.0.0.1", 0), _Socks5Handler)
    server.guard = guard
    thread = threading.Thread(target=server.serve_forever, name="netguard", daemon=True)
    thread.start()
    try:
        # socks5h: the proxy resolves names, so the address checked is the one connected to.
        yield f"socks5h://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    guard: Guard

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("netguard: connection error", exc_info=True)


class _Socks5Handler(socketserver.BaseRequestHandler):
    request: socket.socket
    server: _Server

    def handle(self) -> None:
        client = self.request
        client.settimeout(_CONNECT_TIMEOUT_S)
        version, n_methods = _recv_exact(client, 2)
        methods = _recv_exact(client, n_methods)
        if version != _VERSION or _NO_AUTH not in methods:
            client.sendall(bytes([_VERSION, _NO_METHOD]))
            return
        client.sendall(bytes([_VERSION, _NO_AUTH]))
        version, command, _reserved, atyp = _recv_exact(client, 4)
        if atyp == _ATYP_IPV4:
            host = socket.inet_ntop(socket.AF_INET, _recv_exact(client, 4))
        elif atyp == _ATYP_IPV6:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(client, 16))
        elif atyp == _ATYP_NAME:
            host = _recv_exact(client, _recv_exact(client, 1)[0]).decode("idna")
        else:
            return _reply(client, _CMD_UNSUPPORTED)
        (port,) = struct.unpack("!H", _recv_exact(client, 2))
        if command != _CMD_CONNECT:
            return _reply(client, _CMD_UNSUPPORTED)
        upstream = self._connect(host, port)
        if upstream is None:
            return
        with upstream:
            _reply(client, _OK)
            _pipe(client, upstream)

    def _connect(self, host: str, port: int) -> socket.socket | None:
        guard = self.server.guard
        try:
            addresses = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError:
            _reply(self.request, _HOST_UNREACHABLE)
            return None
        for family, kind, proto, _name, sockaddr in addresses:
            address = str(sockaddr[0])
            if not guard.allows(host, port, address):
                guard.refused.append(f"{host}:{port}" + (f" ({address})" if address != host else ""))
                log.info("netguard: refused %s:%d (%s)", host, port, address)
                _reply(self.request, _NOT_ALLOWED)
                return None
            try:
                upstream = socket.socket(family, kind, proto)
                upstream.settimeout(_CONNECT_TIMEOUT_S)
                upstream.connect(sockaddr)
                return upstream
            except OSError:
                upstream.close()
        _reply(self.request, _REFUSED if addresses else _FAILURE)
        return None


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("SOCKS client hung up")
        data += chunk
    return data


def _reply(sock: socket.socket, code: int) -> None:
    # The bound address is not used by yt-dlp: 0.0.0.0:0.
    sock.sendall(bytes([_VERSION, code, 0, _ATYP_IPV4, 0, 0, 0, 0, 0, 0]))


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides have finished sending (or one fails)."""
    peers = {a: b, b: a}
    open_for_reading = [a, b]
    for s in peers:
        s.setblocking(True)
        s.settimeout(None)
    while open_for_reading:
        readable, _, _ = select.select(open_for_reading, [], [], _IDLE_TIMEOUT_S)
        if not readable:
            return
        for s in readable:
            try:
                data = s.recv(_PIPE_CHUNK)
            except OSError:
                return
            if not data:
                open_for_reading.remove(s)
                try:
                    peers[s].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            try:
                peers[s].sendall(data)
            except OSError:
                return
