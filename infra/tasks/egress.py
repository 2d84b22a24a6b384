"""Which network addresses a task may reach, and a connect that reaches only the address it checked.

Workflow authors are not trusted, and the http task, the browser task and the
HTTP-speaking providers send requests to URLs they can influence. From a worker
those URLs could otherwise reach the instance metadata service
(169.254.169.254), the Lambda runtime API (127.0.0.1:9001) or services inside
the VPC. So every outbound connection is decided here:

- on the IP addresses the host resolves to (``getaddrinfo``), never on how the
  URL spells the host: ``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
  ``127.1``, ``[::ffff:127.0.0.1]`` and ``localhost`` are all 127.0.0.1;
- the host is resolved once, every address it resolves to must be allowed (one
  denied address refuses the request: a name that mixes public and internal
  addresses is how rebinding attacks are set up), and the socket is connected
  to those checked addresses, so an answer that changes between the check and
  the connect cannot slip through.

Denied unless allowed: the networks in ``_DENIED_V4`` and ``_DENIED_V6``
(loopback, unspecified, link-local, private, unique-local, carrier-grade NAT,
multicast, broadcast, reserved, documentation, ...), IPv6 forms that embed a
denied IPv4 address (mapped, translated, NAT64, 6to4), and anything else
Python's ``ipaddress`` does not call globally reachable.

``LOOPLINE_EGRESS_ALLOW`` (the deployment's, never the workflow's) opens hosts:
comma-separated entries, each a host name (``localhost``), a wildcard
(``*.internal.example``: any name below it, not the name itself), an IP address
(``127.0.0.1``, ``::1``) or network (``10.1.0.0/16``), each with an optional port
(``127.0.0.1:8080``, ``[::1]:8080``, ``*.internal.example:443``). A name entry
trusts whatever the name resolves to; an address entry allows that address
however the URL spells it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Union

from .base import PROVIDER_CONFIG_ERROR, TaskFailure

EGRESS_DENIED = "EgressDenied"
ALLOW_VARIABLE = "LOOPLINE_EGRESS_ALLOW"

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_DENIED_V4 = tuple((ipaddress.IPv4Network(net), why) for net, why in (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (instance metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved or broadcast"),
))
_DENIED_V6 = tuple((ipaddress.IPv6Network(net), why) for net, why in (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
))
# IPv6 prefixes that carry an IPv4 address in their last 32 bits: the packet ends up at that IPv4 address.
_EMBEDDING_V4 = tuple(ipaddress.IPv6Network(net) for net in ("::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96"))


def denial(ip: Address) -> str | None:
    """Why ``ip`` may not be reached by default (a short reason), or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            reason = denial(embedded)
            return f"{reason} ({embedded} inside IPv6)" if reason else None
    for network, reason in _DENIED_V4 if ip.version == 4 else _DENIED_V6:
        if ip in network:
            return reason
    if not ip.is_global:  # what Python's registry knows beyond the table above
        return "not globally reachable"
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _EMBEDDING_V4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def plain(ip: Address) -> Address:
    """An IPv4-mapped IPv6 address is the IPv4 address (the same socket destination)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def canonical_host(host: str) -> str:
    """The host as resolvers see it: lower-case, IDNA (so full-width and other look-alike spellings become
    ASCII), without a trailing dot. Raises ValueError for what is not a host name or address."""
    if not host or "%" in host or any(c.isspace() for c in host):
        # Percent-encoding (which browsers decode) and IPv6 zone ids are refused, not guessed at.
        raise ValueError(f"{host!r} is not a plain host name or address")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(f"{host!r} is not a valid host name") from exc
    ascii_host = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    if not ascii_host or not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise ValueError(f"{host!r} is not a valid host name")
    return ascii_host


@dataclass(frozen=True)
class AllowEntry:
    """One ``LOOPLINE_EGRESS_ALLOW`` entry: a name (``wildcard``: names below it), or a network."""

    name: str | None = None
    wildcard: bool = False
    network: Network | None = None
    port: int | None = None

    def allows_name(self, host: str, port: int) -> bool:
        if self.name is None or self.port not in (None, port):
            return False
        return host.endswith("." + self.name) if self.wildcard else host == self.name

    def allows_address(self, ip: Address, port: int) -> bool:
        return (self.network is not None and self.port in (None, port)
                and plain(ip).version == self.network.version and plain(ip) in self.network)


def _entry(text: str) -> AllowEntry:
    host, port = text, None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 entry is written [address] or [address]:port")
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    number = None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{port!r} is not a port")
        number = int(port)
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        network = None
    if network is not None:
        if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == 128:
            network = ipaddress.ip_network(plain(network.network_address))
        return AllowEntry(network=network, port=number)
    wildcard = host.startswith("*.")
    name = canonical_host(host[2:] if wildcard else host)
    if _is_address(name) or name.rsplit(".", 1)[-1].isdigit() or name.rsplit(".", 1)[-1].startswith("0x"):
        # 127.1 or 0x7f000001 would only ever be compared as a name, which no URL's host would match.
        raise ValueError("write an address in its usual form (127.0.0.1, ::1) or a network (10.0.0.0/8); "
                         "a wildcard covers names only")
    return AllowEntry(name=name, wildcard=wildcard, port=number)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class EgressPolicy:
    allowed: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "EgressPolicy":
        entries = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                entries.append(_entry(part))
            except ValueError as exc:
                raise TaskFailure(PROVIDER_CONFIG_ERROR, f"{ALLOW_VARIABLE}: entry {part!r}: {exc}") from None
        return cls(tuple(entries))

    def check(self, host: str, port: int, addresses: list[Address]) -> None:
        """Raise ``EgressDenied`` unless every address ``host`` resolved to may be reached on ``port``."""
        if any(entry.allows_name(host, port) for entry in self.allowed):
            return
        for ip in addresses:
            reason = denial(plain(ip))
            if reason and not any(entry.allows_address(ip, port) for entry in self.allowed):
                where = f"{host} resolves to {ip}, which" if host != str(ip) else str(ip)
                raise TaskFailure(EGRESS_DENIED, f"{where} is a {reason} address; tasks may not reach it unless "
                                                 f"the deployment names it in {ALLOW_VARIABLE}")


def resolve(host: str, port: int, policy: EgressPolicy) -> list[tuple]:
    """``getaddrinfo`` for ``host``, once, with every answer checked: the (family, sockaddr) pairs to use."""
    try:
        name = canonical_host(host)
    except ValueError as exc:
        raise TaskFailure(EGRESS_DENIED, str(exc)) from None
    answers = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    pairs = [(family, sockaddr) for family, _, _, _, sockaddr in answers]
    # An address with a zone (fe80::1%eth0) is link-local, denied unless allowed; the zone is not part of the IP.
    addresses = [ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]) for _, sockaddr in pairs]
    policy.check(name, port, addresses)
    return pairs


# socket.create_connection's "no timeout given" marker (private, so the stubs do not name it).
_DEFAULT_TIMEOUT: object = getattr(socket, "_GLOBAL_DEFAULT_TIMEOUT")


def connect(address: tuple[str, int], timeout: float | None | object = _DEFAULT_TIMEOUT,
            source_address: tuple[str, int] | None = None, *, policy: EgressPolicy) -> socket.socket:
    """``socket.create_connection``, but only to the addresses ``resolve`` checked (no second lookup)."""
    host, port = address
    last_error: OSError | None = None
    for family, sockaddr in resolve(host, int(port), policy):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)  # type: ignore[arg-type]
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            last_error = exc
            sock.close()
    raise last_error or OSError(f"{host} resolved to no address")


def check_url(url: str, policy: EgressPolicy) -> None:
    """Refuse a URL's host early (before a browser starts); the connection itself is checked again.
    A name that does not resolve is left to the connection to report."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        resolve(parts.hostname or "", port, policy)
    except OSError:
        pass
