"""The inventory of controls as code (RULES.md K1).

A ``ControlKind`` names one model whose rows are controls, the fields that are the control, how a
row is read as plain values (``snapshot``) and written back (``assign``), whose duty decides a
change (``scope``, K6), what makes a change weaker (``weakens``, K3) and what no configuration may
cross (``floors``, K4). Apps register their kinds when they are ready; ``governance.controls``
changes rows only through these descriptions.

Values are JSON: foreign keys by their natural key (slug, username), many-to-many fields as sorted
lists of natural keys, times and datetimes in ISO 8601, so the chain's before/after values read
as what an auditor would write down.
"""
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.errors import Reason

ADMINISTRATORS = "administrators"  # superusers or security for all environments propose and approve
ACCOUNTS = "accounts"  # superusers propose; another superuser or security for all environments approves
DUTY = "duty"  # the duty holders for the scope propose and approve (superusers propose too)


@dataclass(frozen=True)
class Scope:
    """Whose duty decides a change: security for these environments, for all of them
    (``everywhere``), or the managers of a team."""

    environments: tuple[str, ...] = ()
    everywhere: bool = False
    team: str | None = None

    def as_dict(self) -> dict:
        return {"environments": list(self.environments), "everywhere": self.everywhere, "team": self.team}

    @classmethod
    def from_dict(cls, data: dict) -> "Scope":
        return cls(tuple(data.get("environments") or ()), bool(data.get("everywhere")), data.get("team"))

    def describe(self) -> str:
        if self.team:
            return f"team {self.team}"
        if self.everywhere or not self.environments:
            return "all environments"
        return ", ".join(self.environments)


EVERYWHERE = Scope(everywhere=True)


@dataclass(frozen=True)
class Weakening:
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"field": self.field, "message": self.message}


def natural_key(obj) -> str | int | None:
    if obj is None:
        return None
    if isinstance(obj, get_user_model()):
        return obj.get_username()
    slug = getattr(obj, "slug", None)
    return slug if slug else obj.pk


def from_natural_key(model, key):
    if key is None:
        return None
    if model is get_user_model():
        return model.objects.get(**{model.USERNAME_FIELD: key})
    if any(f.name == "slug" for f in model._meta.get_fields()) and isinstance(key, str):
        return model.objects.get(slug=key)
    return model.objects.get(pk=key)


def _plain(value):
    """A Python value as the JSON the chain stores (so before and after compare as stored)."""
    import json

    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


@dataclass(frozen=True)
class VirtualField:
    """A control value kept in other rows than the model's own (a role's duties): read from a saved
    row, written once the row is saved."""

    name: str
    read: Callable[[models.Model], object]
    write: Callable[[models.Model, object], None]
    default: object = None
    # A proposed value as ``read`` would give it back once written (a set of duties: sorted, once
    # each), so a reordered list is no change and the event's "after" is what is stored.
    normalise: Callable[[object], object] = lambda value: value


@dataclass(frozen=True)
class ControlKind:
    key: str  # "<app_label>.<model_name>"
    label: str  # how people name it: "approval policy"
    model: type[models.Model]
    fields: tuple[str, ...]
    scope: Callable[[dict | None, dict | None], Scope]
    weakens: Callable[[dict | None, dict | None], list[Weakening]]
    floors: Callable[[dict], list[Reason]] = lambda after: []
    # The values a new row is compared with: creating it is weakening where it is weaker than
    # these (an environment with no policy is held to the default one). None: creating is never
    # weakening in itself; ``weakens(None, after)`` still decides.
    baseline: Callable[[dict], dict] | None = None
    clean: Callable[[models.Model, dict, datetime], None] | None = None  # kind's own checks (row, related, at)
    after_apply: Callable[..., None] | None = None  # (obj, before, after, at) once the row is written
    initialise: Callable[[models.Model, object], None] | None = None  # (new row, proposer) before it is checked
    subject: Callable[[models.Model | None, dict], object] | None = None  # the account it concerns
    authority: str = DUTY
    deletable: bool = False
    secret_fields: tuple[str, ...] = ()  # chained as a fingerprint; the value travels in sealed_after
    describe: Callable[[models.Model], str] = str
    exclude_from_clean: tuple[str, ...] = field(default=())
    virtual: tuple[VirtualField, ...] = ()

    @property
    def all_fields(self) -> tuple[str, ...]:
        return self.fields + tuple(v.name for v in self.virtual)

    def _virtual(self, name: str) -> VirtualField | None:
        return next((v for v in self.virtual if v.name == name), None)

    # --- Reading and writing rows as values ------------------------------------------------------

    def model_field(self, name: str):
        return self.model._meta.get_field(name)

    def snapshot(self, obj, deferred: dict | None = None) -> dict:
        """The control fields of ``obj`` as values; ``deferred`` overrides many-to-many and virtual
        fields (an unsaved row, or one whose related rows are not written yet)."""
        values = {}
        deferred = deferred or {}
        for virtual in self.virtual:
            if virtual.name in deferred:
                values[virtual.name] = _plain(virtual.normalise(deferred[virtual.name]))
            else:
                values[virtual.name] = _plain(virtual.read(obj) if obj.pk else virtual.default)
        for name in self.fields:
            model_field = self.model_field(name)
            if model_field.many_to_many:
                related = deferred.get(name)
                if related is None:
                    related = list(getattr(obj, name).all()) if obj.pk else []
                values[name] = sorted(natural_key(r) for r in related)
            elif model_field.is_relation:
                values[name] = natural_key(getattr(obj, name)) if getattr(obj, model_field.attname) is not None else None
            elif name in self.secret_fields:
                values[name] = _fingerprint(getattr(obj, name))
            else:
                values[name] = _plain(model_field.value_from_object(obj))
        return values

    def assign(self, obj, values: dict) -> dict:
        """Set the non-relational and foreign-key fields of ``obj`` from stored values; returns the
        many-to-many fields (as lists of rows) and virtual fields, to write once ``obj`` is saved."""
        m2m = {}
        for name, value in values.items():
            if self._virtual(name) is not None:
                m2m[name] = value
                continue
            model_field = self.model_field(name)
            if model_field.many_to_many:
                m2m[name] = [from_natural_key(model_field.related_model, key) for key in value]
            elif model_field.is_relation:
                setattr(obj, name, from_natural_key(model_field.related_model, value))
            else:
                setattr(obj, name, model_field.to_python(value))
        return m2m

    def target_repr(self, obj) -> str:
        return f"{self.label} {self.describe(obj)}"[:255]

    def weakening(self, before: dict | None, after: dict | None) -> list[Weakening]:
        """Why the control as ``after`` is weaker than as ``before`` (``None``: the row does not
        exist). Deleting a control always weakens it; a new row is compared with the kind's
        ``baseline`` (K3). The control door asks this of each change; the evidence bundles ask it
        of the state at a period's start and each later state (K7)."""
        if after is None:
            return [Weakening("", f"the {self.label} is deleted")] if before is not None else []
        compared_with = before if before is not None else (self.baseline(after) if self.baseline else None)
        return self.weakens(compared_with, after)


def _fingerprint(secret: str) -> str:
    import hashlib

    return f"set (sha256 {hashlib.sha256(secret.encode()).hexdigest()[:12]}…)" if secret else ""


_KINDS: dict[str, ControlKind] = {}
# Floors another app adds to a kind it does not own (releases' policy floors on an environment's
# tier), so the kind's own module need not import the app above it.
_EXTRA_FLOORS: dict[str, list[Callable[[dict], list[Reason]]]] = {}


def register(kind: ControlKind) -> ControlKind:
    _KINDS[kind.key] = kind
    return kind


def add_floor(key: str, floor: Callable[[dict], list[Reason]]) -> None:
    _EXTRA_FLOORS.setdefault(key, []).append(floor)


def floors(kind: ControlKind, after: dict) -> list[Reason]:
    """Every floor of ``kind`` (K4) the values ``after`` cross: the kind's own and those added to it."""
    return [*kind.floors(after), *(r for floor in _EXTRA_FLOORS.get(kind.key, []) for r in floor(after))]


def get(key: str) -> ControlKind:
    return _KINDS[key]


def for_model(model) -> ControlKind | None:
    return _KINDS.get(model._meta.label_lower)


def kinds() -> list[ControlKind]:
    return list(_KINDS.values())


# --- Comparators the kinds share ------------------------------------------------------------------


def fewer(name: str, what: str, *, rank: dict | None = None) -> Callable[[dict, dict], list[Weakening]]:
    """A number that must not go down (approvals required, security approvals, …); with ``rank``, a
    choice that must not go down that ranking (an environment's tier, a digest's strength)."""

    def check(before: dict, after: dict) -> list[Weakening]:
        old, new = before.get(name), after.get(name)
        if rank is not None:
            if old in rank and new in rank and rank[new] < rank[old]:
                return [Weakening(name, f"{what} from {old} to {new}")]
            return []
        if old is not None and new is not None and new < old:
            return [Weakening(name, f"{what} from {old} to {new}")]
        return []

    return check


def more(name: str, what: str, *, none_is_infinite: bool = False) -> Callable[[dict, dict], list[Weakening]]:
    """A number that must not go up (hours until a review is due, SLA minutes, approval TTL)."""

    def check(before: dict, after: dict) -> list[Weakening]:
        old, new = before.get(name), after.get(name)
        if old == new:
            return []
        if none_is_infinite:
            if new is None:
                return [Weakening(name, f"{what} from {old} to never")]
            if old is None:
                return []
        if old is not None and new is not None and new > old:
            return [Weakening(name, f"{what} from {old} to {new}")]
        return []

    return check


def switched_off(name: str, what: str) -> Callable[[dict, dict], list[Weakening]]:
    def check(before: dict, after: dict) -> list[Weakening]:
        if before.get(name) and not after.get(name):
            return [Weakening(name, f"{what} switched off")]
        return []

    return check


def switched_on(name: str, what: str) -> Callable[[dict, dict], list[Weakening]]:
    def check(before: dict, after: dict) -> list[Weakening]:
        if after.get(name) and not before.get(name):
            return [Weakening(name, f"{what} switched on")]
        return []

    return check


def changed(name: str, what: str) -> Callable[[dict, dict], list[Weakening]]:
    """Any change of this field may weaken the control: treat it as weakening."""

    def check(before: dict, after: dict) -> list[Weakening]:
        if before.get(name) != after.get(name):
            return [Weakening(name, f"{what} changed from {before.get(name)!r} to {after.get(name)!r}")]
        return []

    return check


def text_changed(name: str, what: str) -> Callable[[dict, dict], list[Weakening]]:
    """A long text (certificates, PEM) whose every change may weaken the control, compared without
    surrounding whitespace and named without its value."""

    def check(before: dict, after: dict) -> list[Weakening]:
        if (before.get(name) or "").strip() != (after.get(name) or "").strip():
            return [Weakening(name, f"{what} changed")]
        return []

    return check


def removed_items(name: str, what: str) -> Callable[[dict, dict], list[Weakening]]:
    """A list that must not lose members (a freeze window's environments)."""

    def check(before: dict, after: dict) -> list[Weakening]:
        gone = sorted(set(before.get(name) or []) - set(after.get(name) or []))
        return [Weakening(name, f"{what}: {', '.join(map(str, gone))} removed")] if gone else []

    return check


def added_items(name: str, what: str) -> Callable[[dict, dict], list[Weakening]]:
    """A list that must not gain members (a role's duties, on-call reviewers)."""

    def check(before: dict, after: dict) -> list[Weakening]:
        new = sorted(set(after.get(name) or []) - set(before.get(name) or []))
        return [Weakening(name, f"{what}: {', '.join(map(str, new))} added")] if new else []

    return check


def all_of(*checks) -> Callable[[dict | None, dict | None], list[Weakening]]:
    """Weakening reasons of an update (``before`` and ``after``). A creation (``before`` None) is
    not weakening in itself: kinds whose new rows can be weaker than what holds without them
    compare with their ``baseline`` instead. A deletion is decided by the kind."""

    def check(before: dict | None, after: dict | None) -> list[Weakening]:
        if before is None or after is None:
            return []
        found: list[Weakening] = []
        for one in checks:
            found.extend(one(before, after))
        return found

    return check


def parse_time(value):
    return datetime.fromisoformat(value) if isinstance(value, str) and value else value
