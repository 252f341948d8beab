"""TLP 2.0 markings as STIX 2.1 marking-definition objects (FORUM.md "TLP 2.0 markings").

`stix2` 3.0.x ships only TLP 1.0 constants. These are the fixed OASIS ids from cti-stix-common-objects
(extension-definition-specifications/tlp-2.0), and the objects are reproduced exactly as OASIS publishes
them: a receiver resolves them by id, so a single changed byte would make them someone else's marking.
"""

from __future__ import annotations

from django.db import models

TLP_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
# Part of the published objects, like their ids.
TLP_CREATED = "2022-10-01T00:00:00.000Z"


class Tlp(models.TextChoices):
    CLEAR = "clear", "TLP:CLEAR"
    GREEN = "green", "TLP:GREEN"
    AMBER = "amber", "TLP:AMBER"
    AMBER_STRICT = "amber+strict", "TLP:AMBER+STRICT"
    RED = "red", "TLP:RED"


MARKING_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP_BY_MARKING_ID: dict[str, Tlp] = {marking: tlp for tlp, marking in MARKING_IDS.items()}

# A share's default, and the only levels allowed once it carries account/organisation pseudonyms or prompt
# excerpts (FORUM.md "Default to TLP:AMBER+STRICT for anything that carries pseudonyms").
DEFAULT_TLP = Tlp.AMBER_STRICT
PROTECTIVE_TLPS: frozenset[Tlp] = frozenset({Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED})
# Levels whose objects another lab sent us may never be shared onward (inbound, F3).
NEVER_RESHARE_TLPS: frozenset[Tlp] = frozenset({Tlp.AMBER_STRICT, Tlp.RED})


def marking_definition(tlp: Tlp | str) -> dict:
    """The OASIS TLP 2.0 marking-definition object for ``tlp``, as published."""
    tlp = Tlp(tlp)
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": MARKING_IDS[tlp],
        "created": TLP_CREATED,
        "name": tlp.label,
        "extensions": {TLP_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": tlp.value}},
    }


def tlp_of(marking_refs: list[str] | None) -> Tlp | None:
    """The strictest TLP 2.0 level among an object's ``object_marking_refs`` (None when it has none)."""
    order = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED]
    found = [TLP_BY_MARKING_ID[ref] for ref in marking_refs or [] if ref in TLP_BY_MARKING_ID]
    return max(found, key=order.index) if found else None
