"""A real RFC 3161 timestamp authority on 127.0.0.1 for the tests: a throwaway CA and TSA certificate
made here (extendedKeyUsage critical timeStamping, RFC 3161 section 2.3), and a tiny HTTP server
that answers each POSTed TimeStampReq with ``openssl ts -reply``."""
import datetime
import http.server
import shutil
import subprocess  # nosec B404 - the test TSA is openssl itself
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl")

CONFIG = """
[ tsa ]
default_tsa = test_tsa

[ test_tsa ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.4146.2.3
other_policies = 1.3.6.1.4.1.4146.2.2
digests = sha256, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def make_authority(common_name: str = "Test TSA") -> tuple[str, str, ec.EllipticCurvePrivateKey]:
    """(CA certificate PEM, TSA certificate PEM, TSA key): a CA that issued a timestamping certificate."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(f"{common_name} Root CA")).issuer_name(_name(f"{common_name} Root CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    tsa = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca.subject)
           .public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                        data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                        crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
           .sign(ca_key, hashes.SHA256()))
    return _pem(ca), _pem(tsa), tsa_key


@dataclass
class Authority:
    """A running TSA: ``url`` to POST to, ``certificate`` (the CA's PEM) to check its tokens with,
    ``requests`` counts the requests it answered."""

    url: str
    certificate: str
    tsa_certificate: str
    directory: Path
    server: http.server.ThreadingHTTPServer
    handler: type
    requests: int = 0

    def stop(self) -> None:
        """Down: the port refuses connections until ``restart``."""
        self.server.shutdown()
        self.server.server_close()

    def restart(self) -> None:
        self.server = _serve(self.handler, self.server.server_address[1])

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _serve(handler: type, port: int) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start(common_name: str = "Test TSA", port: int = 0) -> Authority:
    directory = Path(tempfile.mkdtemp(prefix="countersign-tsa-"))
    ca_pem, tsa_pem, tsa_key = make_authority(common_name)
    (directory / "ca.pem").write_text(ca_pem)
    (directory / "tsa.pem").write_text(tsa_pem)
    (directory / "tsa.key").write_bytes(tsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / "serial").write_text("01\n")
    (directory / "tsa.cnf").write_text(CONFIG.format(dir=directory))
    lock = threading.Lock()
    holder: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                (directory / "query.tsq").write_bytes(query)
                done = subprocess.run(  # nosec B603 - fixed arguments, openssl from PATH
                    [OPENSSL, "ts", "-reply", "-config", str(directory / "tsa.cnf"), "-queryfile",
                     str(directory / "query.tsq"), "-out", str(directory / "reply.tsr")],
                    capture_output=True, timeout=30, check=False)
                reply = (directory / "reply.tsr").read_bytes() if done.returncode == 0 else b""
                holder["authority"].requests += 1
            if not reply:
                self.send_error(500, done.stderr.decode(errors="replace")[:200])
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = _serve(Handler, port)
    authority = Authority(url=f"http://127.0.0.1:{server.server_address[1]}/tsa", certificate=ca_pem,
                          tsa_certificate=tsa_pem, directory=directory, server=server, handler=Handler)
    holder["authority"] = authority
    return authority
