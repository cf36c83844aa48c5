"""The governance admin: a client of ``governance.services`` and ``governance.controls`` (STYLE.md
point 6), one module per topic. Nothing here writes a governed model; who sees and may do what is
derived from duties held through role assignments (RULES.md V2, V4), never from Django's model
permissions, and superusers act through the same services as everyone."""
from governance.access_reviews import admin as _access_reviews  # noqa: F401
from governance.admin import accounts, exceptions, grants, organisation, roles, tokens  # noqa: F401
from governance.controls import admin as _controls, alerting_admin as _schedules  # noqa: F401
