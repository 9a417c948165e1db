"""The client's address behind reverse proxies: only proxies listed in TRUSTED_PROXIES are believed.

X-Forwarded-For is walked from the right (each proxy appends the address it saw), skipping trusted proxies;
the first untrusted address is the client. The left-most entry is written by the client and never trusted.
"""

import functools
import ipaddress

from django.conf import settings

MAX_ADDRESS = 64  # an unparseable hop is still used as a key, but never a long one


@functools.lru_cache(maxsize=8)
def networks(entries):
    """ip_network objects for addresses or CIDRs; ValueError names a malformed entry."""
    parsed = []
    for entry in entries:
        try:
            parsed.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"TRUSTED_PROXIES/METRICS_ALLOWED_CIDRS: {entry!r} is not an address or CIDR"
            ) from None
    return tuple(parsed)


def address_in(address, entries):
    """True when ``address`` (a string) falls in one of ``entries`` (addresses or CIDRs)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in net for net in networks(tuple(entries)))


def is_trusted(address):
    return address_in(address, settings.TRUSTED_PROXIES)


def from_trusted_proxy(request):
    """True when the connection itself comes from a trusted proxy (its headers may be believed)."""
    return is_trusted(request.META.get("REMOTE_ADDR", ""))


def client_ip(request):
    """The client's address: REMOTE_ADDR, or behind trusted proxies the right-most untrusted X-Forwarded-For hop."""
    remote = request.META.get("REMOTE_ADDR", "")
    if not from_trusted_proxy(request):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop[:MAX_ADDRESS]
    return hops[0] if hops else remote  # every hop is a trusted host: the first one is the client
