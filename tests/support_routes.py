"""Every route the app serves, as tests that must cover them all see it: the URL conf walked recursively
(``get_resolver()``, the API included) and the OpenAPI schema as drf-spectacular generates it.

Used by tests/compliance/test_read_only.py (every write route tried by a compliance officer) and
tests/security/test_authorization_matrix.py (every route × every principal). A route added later is walked
too, so a test built on this cannot silently leave it out: a parameter it cannot fill is an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404


@dataclass(frozen=True)
class Route:
    text: str  # the whole route, as the patterns spell it
    name: str  # namespace:name
    callback: object


def walk(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            yield from walk(pattern, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield Route(prefix + str(pattern.pattern), namespace + (pattern.name or ""), pattern.callback)


_CONVERTER = re.compile(r"(?<!\?P)<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")
# Parameters that are text whatever their pattern says (DRF's routers spell every parameter as a regex group).
STRING_PARAMETERS = ("format", "token", "slug", "queue", "kind")


def params(text: str) -> list[tuple[str, str]]:
    """The route's parameters as (name, int|str)."""
    found = [(m["name"], "int" if m["conv"] == "int" else "str") for m in _CONVERTER.finditer(text)]
    # A regex group (DRF's routers): numeric by the pattern, or by its name.
    found += [(m["name"], "str" if m["name"] in STRING_PARAMETERS else "int") for m in _GROUP.finditer(text)]
    return found


def path_for(route: Route, values: dict) -> str | None:
    """The route's path with ``values`` for its parameters, or None when that path does not resolve back to the
    route's own view (a value the pattern refuses, or an earlier route that shadows it)."""
    text = _GROUP.sub(lambda m: str(values[m["name"]]), route.text)
    text = _CONVERTER.sub(lambda m: str(values[m["name"]]), text)
    path = "/" + text.replace("^", "").replace("$", "").replace("/?", "/").replace("\\.", ".")
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return path if match.func is route.callback else None


class Seeds(Protocol):
    """What a test seeded, for filling parameters: ids by kind (``case``, ``appeal``…) and text values by
    parameter name (a regex over the name)."""

    ids: dict[str, list[int]]
    strings: dict[str, list[str]]


# Which seeded ids fill an int parameter, by what the route says it is (first match wins); a route that says
# nothing known gets every seeded id.
ID_RULES: list[tuple[str, str, str]] = [
    # (pattern on the route text, parameter name pattern, kind of id)
    (r"attachment", r"attachment", "attachment"),
    (r"attachments/", r"pk", "attachment"),
    (r"appeal", r"pk|id", "appeal"),
    (r"statements/", r"pk|id", "statement"),
    (r"decisions/", r"pk|id", "decision"),
    (r"campaigns/", r"pk|id", "campaign"),
    (r"propose/", r"pk", "case"),
    (r"cases/", r"pk|id", "case"),
    (r"staff/", r"pk|id", "user"),
    (r"detectors/tokens/", r"pk|id", "token"),
    (r"detectors/", r"pk|id", "detector"),
    (r"shares/|proposals/", r"pk|id", "share"),
    (r"flags/", r"pk|id", "flag"),
    (r"^/?audit/", r"pk|id", "audit"),
    (r"policy/", r"number", "version"),
]


# The path segment right before an int parameter says what it is: ``cases/<pk>/decisions/`` is a case and
# ``appeals/statements/<pk>/`` a statement (ID_RULES alone, first match on the whole route, read those as a
# decision and an appeal: the holder's portal lives under /appeals/).
SEGMENT_KINDS: dict[str, str] = {
    "attachments": "attachment", "appeal": "appeal", "appeals": "appeal", "statements": "statement",
    "decisions": "decision", "campaigns": "campaign", "cases": "case", "staff": "user", "tokens": "token",
    "detectors": "detector", "shares": "share", "proposals": "share", "flags": "flag", "audit": "audit",
}


def id_kind(route_text: str, name: str) -> str | None:
    """The kind of seeded object an int parameter names (``case``, ``appeal``…): by the segment before it
    (``SEGMENT_KINDS``), else by ``ID_RULES``."""
    # <int:pk> in a path(), (?P<pk>…) in a router's regex
    before = re.search(rf"([A-Za-z_-]+)/(?:<(?:\w+:)?{re.escape(name)}>|\(\?P<{re.escape(name)}>)", route_text)
    if before and before.group(1) in SEGMENT_KINDS:
        return SEGMENT_KINDS[before.group(1)]
    for where, names, what in ID_RULES:
        if re.search(where, route_text) and re.fullmatch(names, name):
            return what
    return None


def every_id(seeds: Seeds) -> list[int]:
    return sorted({pk for pks in seeds.ids.values() for pk in pks})


def parameter_values(seeds: Seeds, route_text: str, name: str, kind: str) -> list:
    """The seeded values that may fill one parameter; LookupError (naming it) for a text one nobody seeded."""
    if kind == "str":
        for key, values in seeds.strings.items():
            if re.fullmatch(key, name):
                return values
        raise LookupError(name)
    for where, names, what in ID_RULES:
        if re.search(where, route_text) and re.fullmatch(names, name) and seeds.ids.get(what):
            return seeds.ids[what]
    return every_id(seeds)


def concrete_paths(route: Route, seeds: Seeds) -> list[str]:
    """Real paths for a route, one per combination of seeded values, each resolving to the route's own view."""
    combos: list[dict] = [{}]
    for name, kind in params(route.text):
        values = parameter_values(seeds, route.text, name, kind)
        combos = [{**combo, name: value} for combo in combos for value in values]
    return [path for combo in combos if (path := path_for(route, combo)) is not None]


def schema_operations(methods: tuple[str, ...] | None = None) -> tuple[list[tuple[str, str, dict]], dict]:
    """Every operation of the OpenAPI schema as drf-spectacular generates it, (path template, method, operation),
    limited to ``methods`` when given; and the schema's components."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    operations = []
    for path, items in schema["paths"].items():
        for method, operation in items.items():
            if method in ("get", "put", "post", "patch", "delete") and (methods is None or method in methods):
                operations.append((path, method, operation))
    return operations, components
