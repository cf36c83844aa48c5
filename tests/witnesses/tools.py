"""A witness for tests: an Ed25519 key generated here, registered through the control door, that
cosigns checkpoints the way a C2SP witness does (``audit.cosignature.sign_line``)."""
import base64
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import checkpoint, cosignature
from compliance.witnesses.models import Witness
from tests.factories import set_control


@dataclass
class TestWitness:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def vkey(self) -> str:
        return cosignature.vkey(self.name, self.private_key.public_key())

    def cosign(self, note: str, timestamp: int | None = None) -> str:
        """The note with this witness's cosignature line added."""
        cp, _ = checkpoint.parse(note)
        line = cosignature.sign_line(cp, self.name, self.private_key, timestamp or int(time.time()))
        return f"{note}{line}\n"


def new_witness(name="witness.example.org/w1") -> TestWitness:
    return TestWitness(name, Ed25519PrivateKey.generate())


def register(demo, witness: TestWitness, raw: bool = False) -> Witness:
    key = witness.vkey
    if raw:  # the raw 32 bytes, base64, rather than the vkey
        key = base64.b64encode(cosignature.raw_key(witness.private_key.public_key())).decode()
    return set_control(by=demo.admin, control="compliance.witness", name=witness.name, public_key=key, is_active=True)
