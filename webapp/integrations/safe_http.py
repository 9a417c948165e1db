"""POST to a URL a user gave us without letting them reach our own network (server-side request forgery).

The host name is resolved once; every address it resolves to must be public (or inside WEBHOOKS_ALLOWED_CIDRS),
and the connection goes to that very address, so a second lookup cannot answer differently (DNS rebinding).
HTTPS keeps SNI and the certificate check against the host name. No redirects, one timeout for the whole
exchange, and at most MAX_ANSWER bytes of the answer are read.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

MAX_ANSWER = 64 * 1024
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network(
    "64:ff9b::/96"
)  # RFC 6052's well-known prefix: the last 32 bits are the IPv4 host
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a site's own translator, never public
COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291's deprecated IPv4-compatible form


class Unsafe(Exception):
    """The URL may not be called: a sentence saying why."""


def allowed_networks():
    return [ipaddress.ip_network(c, strict=False) for c in settings.WEBHOOKS_ALLOWED_CIDRS]


def embedded_ipv4(ip):
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo's server and client),
    or [] when it carries none: a packet to it reaches those IPv4 hosts, so they are what must be judged."""
    if ip.version != 6:
        return []
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in NAT64 or (ip in COMPATIBLE and int(ip) > 1):  # :: and ::1 are not IPv4 hosts
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    return list(ip.teredo or ())


def check_address(ip):
    """Raise Unsafe for loopback, private, link-local, CGNAT, unspecified, multicast, reserved and unique-local
    addresses, and for IPv6 addresses carrying such an IPv4 address (judged by the IPv4 address alone), unless
    WEBHOOKS_ALLOWED_CIDRS holds them."""
    if any(ip.version == net.version and ip in net for net in allowed_networks()):
        return
    carried = embedded_ipv4(ip)
    for v4 in carried:
        try:
            check_address(v4)
        except Unsafe:
            raise Unsafe(f"The address {ip} carries {v4}, which is not a public address.") from None
    if carried:
        return
    if not ip.is_global or ip.is_multicast or (ip.version == 4 and ip in CGNAT) or ip in LOCAL_NAT64:
        raise Unsafe(f"The address {ip} is not a public address.")


def resolve(url):
    """(scheme, host, port, address) of an http(s) URL whose every address is allowed; raises Unsafe."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Unsafe("The URL is not valid.") from None
    if parts.scheme not in ("http", "https"):
        raise Unsafe("Only http and https URLs are allowed.")
    if not parts.hostname:
        raise Unsafe("The URL has no host.")
    if parts.username or parts.password:
        raise Unsafe("The URL may not carry credentials.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise Unsafe(f"The host {parts.hostname} does not resolve ({e}).") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addresses:
        check_address(ip)
    return parts.scheme, parts.hostname, port, addresses[0]


def post(url, body, headers, timeout=10.0):
    """POST ``body`` (bytes) to ``url`` at the address resolved once. Returns the status code; raises Unsafe
    for a refused URL and urllib3's errors for network failures (timeouts included)."""
    scheme, host, port, ip = resolve(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    headers = {**headers, "Host": host if port == default_port else f"{host}:{port}"}
    limit = urllib3.Timeout(total=timeout)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            str(ip),
            port,
            timeout=limit,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=host,
            assert_hostname=host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(ip), port, timeout=limit, retries=False)
    with pool:
        response = pool.urlopen(
            "POST",
            target,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            response.read(MAX_ANSWER)  # politeness to the receiver, bounded; the content is not used
        finally:
            response.close()
    return response.status
