"""Where the gateway may connect upstream: public addresses, and private ones only by an
allow-list (issue 12 item 7).

A provider's base URL is a request the gateway makes on an admin's say-so (``/admin/providers``
takes one at run time), so an address on the gateway's own network (loopback, RFC 1918,
link-local such as a cloud metadata endpoint, unique-local IPv6) is refused unless the operator
lists it in ``private_upstreams`` (config file) or ``SMARTOKEN_PRIVATE_UPSTREAMS`` (comma
separated): networks in CIDR form (``10.0.0.0/8``, ``127.0.0.1``) or host names
(``ollama.internal``). It is checked when a base URL is configured (start, admin API) and again
on every connection, after name resolution (``EgressConnector``), so a public name that
resolves to a private address is refused too. Redirects are never followed (the adapters pass
``allow_redirects=False``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ENV = "SMARTOKEN_PRIVATE_UPSTREAMS"
KEY = "private_upstreams"


class EgressRefused(OSError):
    """A connection the policy does not allow (raised where aiohttp expects a socket error)."""


def _is_private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EgressPolicy:
        """Raises ValueError naming an entry that is neither a network nor a host name."""
        nets: list[Network] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if not all(part and len(part) < 64 and part.replace("-", "").replace("_", "")
                       .isalnum() and part.isascii() for part in entry.split(".")):
                raise ValueError(f"{raw!r} is neither a network (10.0.0.0/8) nor a host name")
            hosts.add(entry)
        return cls(tuple(nets), frozenset(hosts))

    def address_allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return not _is_private(ip) or any(ip in n for n in self.networks if
                                          n.version == ip.version)

    def host_refusal(self, host: str) -> str | None:
        """Why ``host`` (as written in a URL) may not be connected to, or None. Names are
        checked again after resolution, on connection."""
        name = host.strip("[]").lower().rstrip(".")
        if name in self.hosts:
            return None
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            if name == "localhost" or name.endswith(".localhost"):
                return self._refusal(host)
            return None
        return None if self.address_allowed(name) else self._refusal(host)

    def url_refusal(self, url: str) -> str | None:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return None  # malformed URLs are refused by their own validation
        return self.host_refusal(host) if host else None

    @staticmethod
    def _refusal(host: str) -> str:
        return (f"{host} is a private address; list it in {KEY} (or {ENV}) to allow it as an "
                "upstream")


class EgressConnector(aiohttp.TCPConnector):
    """A TCP connector that refuses private addresses the policy does not allow, checked on the
    resolved addresses (literal IPs included) of every new connection."""

    def __init__(self, policy: EgressPolicy, **kw: Any) -> None:
        super().__init__(**kw)
        self._policy = policy

    async def _resolve_host(self, host: str, port: int,
                            traces: Sequence[Any] | None = None) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces)
        if host.lower().rstrip(".") in self._policy.hosts:
            return results
        allowed = [r for r in results if self._policy.address_allowed(r["host"])]
        if not allowed:
            raise EgressRefused(EgressPolicy._refusal(host))
        return allowed
