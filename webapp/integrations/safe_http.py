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


class Unsafe(Exception):
    """The URL may not be called: a sentence saying why."""


def allowed_networks():
    return [ipaddress.ip_network(c, strict=False) for c in settings.WEBHOOKS_ALLOWED_CIDRS]


def check_address(ip):
    """Raise Unsafe for loopback, private, link-local, CGNAT, unspecified, multicast, reserved, IPv4-mapped
    IPv6 and unique-local addresses, unless WEBHOOKS_ALLOWED_CIDRS holds them."""
    if any(ip.version == net.version and ip in net for net in allowed_networks()):
        return
    mapped = ip.version == 6 and ip.ipv4_mapped is not None
    if mapped or not ip.is_global or ip.is_multicast or (ip.version == 4 and ip in CGNAT):
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
