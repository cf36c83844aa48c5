"""Sending one batch, and what counts as the receiver's acknowledgement (docs/siem.md "Delivery").

HTTPS: a 2xx answer. Redirects are not followed (a 3xx is a failure: a login page answering 200
after a redirect must not count as delivered). Syslog over TCP or TLS has no application-level
acknowledgement: a batch is one connection, written in full, then half-closed; it counts as
delivered when the receiver closes its side in turn (it read everything up to our end of stream;
Linux resets, rather than closes, a socket closed with unread data). Anything else (refused,
reset, timed out) raises ``DeliveryFailed`` and the batch is sent again later, so a receiver may
see a batch twice and de-duplicates by sequence.
"""
import socket
import ssl
from functools import lru_cache
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from compliance.siem.controls import host_and_port
from compliance.siem.models import SiemSink

TIMEOUT_SECONDS = 10


class DeliveryFailed(Exception):
    """The receiver did not acknowledge the batch."""


def tls_context(sink: SiemSink) -> ssl.SSLContext:
    """Certificates checked and host names matched; the sink's CA certificates when it names some."""
    return _context_for(sink.ca_certificate.strip())


@lru_cache(maxsize=32)
def _context_for(ca_certificates: str) -> ssl.SSLContext:
    """One context per set of CA certificates, kept: building one loads the system's CA store,
    which took more than half of each HEC batch's time (issue 21's stream benchmark). A sink whose
    certificates change gets a context of its own; a context is safe to share between threads."""
    context = ssl.create_default_context(cadata=ca_certificates or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError for the 3xx


def post(sink: SiemSink, body: bytes, headers: dict) -> int:
    """POST the batch; returns the 2xx status or raises ``DeliveryFailed``."""
    if urlsplit(sink.destination).scheme not in ("http", "https"):
        raise DeliveryFailed(f"not an HTTP(S) URL: {sink.destination!r}")
    opener = urllib.request.build_opener(_NoRedirects, urllib.request.HTTPSHandler(context=tls_context(sink)))
    request = urllib.request.Request(sink.destination, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:  # scheme checked above  # nosec B310
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DeliveryFailed(f"the collector answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"the collector answered {status}")
    return status


def _until_closed(sock: socket.socket) -> None:
    while sock.recv(4096):
        pass  # a receiver that answers something is read and ignored


def send_syslog(sink: SiemSink, payload: bytes) -> None:
    """One connection per batch: write it all, end our side, wait for the receiver to end theirs."""
    try:
        host, port = host_and_port(sink.destination)
    except ValueError:
        raise DeliveryFailed(f"not host:port: {sink.destination!r}") from None
    sock = None
    try:
        sock = socket.create_connection((host, port), timeout=TIMEOUT_SECONDS)
        if sink.transport == SiemSink.Transport.SYSLOG_TLS:
            sock = tls_context(sink).wrap_socket(sock, server_hostname=host)
            sock.sendall(payload)
            try:
                sock = sock.unwrap()  # our close_notify, then the receiver's
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return  # the receiver closed after reading our close_notify
        else:
            sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        _until_closed(sock)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        if sock is not None:
            sock.close()
