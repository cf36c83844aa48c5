"""The identity controls (RULES.md K1): which provider group hands out which role. A mapping
decides who holds duties, so adding one, re-pointing it or switching it back on waits for a second
person (K3); switching it off applies at once. Grants it hands out still go through the grant
service (SoD checks, four-eyes for privileged roles) when the provider pushes the group."""
from governance.controls.registry import (
    ADMINISTRATORS,
    EVERYWHERE,
    ControlKind,
    Weakening,
    all_of,
    changed,
    register,
    switched_on,
)
from identity.models import GroupRoleMapping

_on_update = all_of(
    changed("group_name", "group"),
    changed("role", "role it grants"),
    changed("team", "team"),
    changed("environment", "environment"),
    switched_on("is_active", "the mapping"),
)


def _weakens(before: dict | None, after: dict | None) -> list[Weakening]:
    """A new mapping that is on hands out a role: weakening. Deleting is refused (not deletable)."""
    if after is None:
        return []
    if before is None:
        if not after.get("is_active"):
            return []
        where = f" in {after['environment']}" if after.get("environment") else " in every environment"
        return [Weakening("group_name", f"members of group {after.get('group_name')!r} are granted "
                                        f"{after.get('role')} in team {after.get('team')}{where}")]
    return _on_update(before, after)


GROUP_ROLE_MAPPING = register(ControlKind(
    key="identity.grouprolemapping",
    label="group role mapping",
    model=GroupRoleMapping,
    fields=("group_name", "role", "team", "environment", "is_active"),
    scope=lambda before, after: EVERYWHERE,
    authority=ADMINISTRATORS,
    weakens=_weakens,
    describe=str,
))
