"""A ``values_list`` query built by the ORM once per process and run again with new values (issue
21): on the hot paths the ORM spent more time building and compiling a query than the database
spent answering it. The queryset stays the one home of what it asks (a manager method such as
``RoleAssignment.objects.in_force``); only its compiled SQL is kept.

The shape is compiled with a sentinel for each value that changes from call to call, and the
sentinels' places among the compiled parameters are remembered; a call puts its own values there,
prepared for the database as the ORM prepares them. A sentinel that does not appear, or appears
where it cannot be told apart from a constant, is refused when the shape is first compiled.
Only plain columns (ids, text) may be selected: the rows come back as the database gives them.
"""
from collections.abc import Callable
from datetime import datetime, timezone

from django.db import connection
from django.db.models import QuerySet

# Values no real call uses: a user id below zero, an instant in 1901.
SENTINELS = {int: -727_272_727, datetime: datetime(1901, 2, 3, 4, 5, 6, 789_012, tzinfo=timezone.utc)}


def _prepared(value):
    return connection.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value


class Shape:
    """``Shape(lambda user_id, at: <queryset>.values_list(...), user_id=int, at=datetime)``;
    ``shape.rows(user_id=7, at=now)`` runs the compiled SQL with those values."""

    def __init__(self, build: Callable[..., QuerySet], **kinds: type):
        self.build, self.kinds = build, kinds
        self._compiled: dict[str, tuple[str, list, dict[int, str]]] = {}

    def _compile(self) -> tuple[str, list, dict[int, str]]:
        sentinels = {name: SENTINELS[kind] for name, kind in self.kinds.items()}
        sql, params = self.build(**sentinels).query.sql_with_params()
        slots = {}
        for name, sentinel in sentinels.items():
            found = [i for i, param in enumerate(params) if param == _prepared(sentinel) or param == sentinel]
            if not found:
                raise ValueError(f"{name} does not reach the query's parameters")
            slots.update(dict.fromkeys(found, name))
        return sql, list(params), slots

    def rows(self, **values) -> list[tuple]:
        compiled = self._compiled.get(connection.vendor)
        if compiled is None:
            compiled = self._compiled[connection.vendor] = self._compile()
        sql, params, slots = compiled
        bound = [_prepared(values[slots[i]]) if i in slots else param for i, param in enumerate(params)]
        with connection.cursor() as cursor:
            cursor.execute(sql, bound)
            return cursor.fetchall()
