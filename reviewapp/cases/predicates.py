"""One definition, three readings: a rule written once as a ``Q`` is also read as SQL (for raw queries and
``ON CONFLICT … WHERE``, the way Django itself writes a partial index's condition) and evaluated in Python
on an instance already loaded (for pages and service checks), so no copy of the rule can drift.

Only what our state rules use is understood in Python: AND/OR/NOT of ``exact``, ``in``, ``gt``, ``lte``
and ``isnull`` on a model's own fields; anything else raises, rather than answering wrongly.
"""

from __future__ import annotations

import operator

from django.db import connection
from django.db.models import DateTimeField, Q
from django.db.models.expressions import RawSQL
from django.db.models.sql import Query


def sql_param(name: str, output_field=None) -> RawSQL:
    """A named placeholder (``%(name)s``) to put in a rule where the SQL is built with a parameter left open."""
    if not name.isidentifier():
        raise ValueError(f"a placeholder name, not {name!r}")
    return RawSQL(f"%({name})s", (), output_field=output_field or DateTimeField())  # noqa: S611 (an identifier)


def q_sql(q: Q, model) -> str:
    """The WHERE fragment of ``q`` on ``model``'s table, columns unqualified, constants inlined as literals
    (as Django writes an index condition); named placeholders from ``sql_param`` stay for the caller."""
    query = Query(model=model, alias_cols=False)
    where = query.build_where(q)
    sql, params = where.as_sql(query.get_compiler(connection=connection), connection)
    parts = sql.split("%s")
    if len(parts) != len(params) + 1:
        raise ValueError(f"cannot inline the parameters of {sql!r}")
    out = [parts[0]]
    for param, part in zip(params, parts[1:], strict=True):
        out += [_literal(param), part]
    return "".join(out)


def _literal(value) -> str:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"only text constants are inlined, not {value!r}")
    return "'" + value.replace("'", "''") + "'"


_LOOKUPS = {
    "exact": operator.eq,
    "in": lambda value, choices: value in choices,
    "gt": lambda value, bound: value is not None and value > bound,
    "lte": lambda value, bound: value is not None and value <= bound,
    "isnull": lambda value, null: (value is None) == null,
}


def q_holds(q: Q, obj) -> bool:
    """Whether ``obj`` (a loaded instance) meets ``q``, evaluated in Python: no query."""
    results = []
    for child in q.children:
        if isinstance(child, Q):
            results.append(q_holds(child, obj))
            continue
        path, expected = child
        name, _, lookup = path.partition("__")
        if lookup not in _LOOKUPS and lookup != "":
            raise ValueError(f"q_holds does not understand {path!r}")
        value = getattr(obj, obj._meta.get_field(name).attname)
        results.append(_LOOKUPS[lookup or "exact"](value, expected))
    held = all(results) if q.connector == Q.AND else any(results)
    return not held if q.negated else held
