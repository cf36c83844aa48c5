"""Witnesses are controls (RULES.md K1, docs/rules.md section 8): whose cosignatures the server
accepts and shows. Changing a witness's key or name (the name is part of its key ID) would let
someone else's signatures pass for the witness's, and switching one off removes an outside check:
both are weakening and wait for a second person (K3). Registering a witness and switching one on
apply at once: they add a check, and an auditor trusts only the witness keys it holds itself (the
offline verifiers take them on the command line, never from the server)."""
from django.core.exceptions import ValidationError

from audit.cosignature import CosignatureError, parse_key
from compliance.witnesses.models import Witness
from governance.controls.registry import (
    ADMINISTRATORS,
    EVERYWHERE,
    ControlKind,
    all_of,
    changed,
    register,
    switched_off,
)


def _clean(witness: Witness, deferred: dict, at) -> None:
    if not witness.name or any(c.isspace() or c == "+" for c in witness.name):
        raise ValidationError({"name": ["A key name without spaces or '+', e.g. witness.example.org/w1."]})
    try:
        parse_key(witness.public_key, witness.name)
    except CosignatureError as exc:
        raise ValidationError({"public_key": [str(exc)]}) from None


WITNESS = register(ControlKind(
    key="compliance.witness",
    label="witness",
    model=Witness,
    fields=("name", "public_key", "is_active"),
    scope=lambda before, after: EVERYWHERE,
    authority=ADMINISTRATORS,
    weakens=all_of(
        switched_off("is_active", "the witness (its cosignatures are no longer accepted)"),
        changed("name", "witness name"),
        changed("public_key", "witness key"),
    ),
    clean=_clean,
    describe=lambda witness: witness.name,
))
