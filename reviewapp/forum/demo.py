"""The demo's second lab (`make run`): a bundle a fictional peer, "Northwind Research Lab", shared in the first
trust group, seeded into the local hub (``run_forum_hub --seed FILE``) so the inbound pull has something to match:
pseudonyms of some demo accounts under the demo key (settings/dev.py) and a fingerprint two bits from a demo
template's. Deterministic: the same ids every run, so a pull after a restart stores nothing twice."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.conf import settings

from .extensions import PROMPT_FINGERPRINT_EXT, PSEUDONYM_EXT
from .pseudonyms import account_pseudonym, forum_key
from .tlp import MARKING_IDS, Tlp, marking_definition

PEER_NS = uuid.UUID("5b0e6d3c-2f1a-4c7e-9d8b-0a1b2c3d4e5f")
PEER_NAME = "Northwind Research Lab (fictional demo peer)"
CREATED = "2026-11-25T09:00:00.000Z"
# Demo accounts (flags/demo.py) the peer also saw.
MATCHED_ACCOUNTS = ("acct_hv_0001", "acct_hv_0002", "acct_hv_0003")


def _id(kind: str, name: str) -> str:
    return f"{kind}--{uuid.uuid5(PEER_NS, name)}"


def _near(simhash: str, bits: int = 2) -> str:
    value = int(simhash, 16)
    for bit in range(bits):
        value ^= 1 << (bit * 7)
    return f"{value:016x}"


def second_lab_objects() -> list[dict]:
    from flags.demo import REASONING_TEMPLATES

    key = forum_key()
    marking = MARKING_IDS[Tlp.AMBER_STRICT]
    identity = {"type": "identity", "spec_version": "2.1", "id": _id("identity", "peer"), "created": CREATED,
                "modified": CREATED, "name": PEER_NAME, "identity_class": "organization"}
    common = {"spec_version": "2.1", "created": CREATED, "modified": CREATED, "created_by_ref": identity["id"],
              "object_marking_refs": [marking]}
    campaign = {"type": "campaign", "id": _id("campaign", "campaign"), "name": "Stepwise reasoning harvest",
                "first_seen": "2026-11-10T00:00:00.000Z", "last_seen": "2026-11-24T00:00:00.000Z", **common}
    simhash = _near(REASONING_TEMPLATES[0].simhash64)
    indicator = {
        "type": "indicator", "id": _id("indicator", "fingerprint"), "indicator_types": ["malicious-activity"],
        "pattern_type": "stix", "valid_from": CREATED, "name": "Templated step-by-step reasoning prompts",
        "pattern": f"[x-prompt-signature:simhash64 = '{simhash}'] REPEATS 500 TIMES WITHIN 86400 SECONDS",
        "extensions": {PROMPT_FINGERPRINT_EXT: {"extension_type": "property-extension",
                                                "template_simhash64": simhash, "slot_count": 2,
                                                "rate_p50_per_day": 4200, "rate_p95_per_day": 9100}},
        **common}
    indicates = {"type": "relationship", "id": _id("relationship", "indicates"), "relationship_type": "indicates",
                 "source_ref": indicator["id"], "target_ref": campaign["id"], **common}
    accounts = []
    for external_id in MATCHED_ACCOUNTS:
        value = account_pseudonym(external_id, key=key)
        accounts.append({"type": "user-account", "spec_version": "2.1",
                         "id": f"user-account--{uuid.uuid5(PEER_NS, value)}", "user_id": value,
                         "object_marking_refs": [marking],
                         "extensions": {PSEUDONYM_EXT: {"extension_type": "property-extension",
                                                        "scheme": "hmac-sha256", "key_id": key.id}}})
    observed = {"type": "observed-data", "id": _id("observed-data", "accounts"), "first_observed": CREATED,
                "last_observed": CREATED, "number_observed": 1, "object_refs": [a["id"] for a in accounts],
                **common}
    related = {"type": "relationship", "id": _id("relationship", "related"), "relationship_type": "related-to",
               "source_ref": observed["id"], "target_ref": campaign["id"], **common}
    return [identity, marking_definition(Tlp.AMBER_STRICT), campaign, indicator, indicates, *accounts, observed,
            related]


def write_seed(path: Path) -> Path:
    """``{"<first collection id>": [objects]}`` for ``run_forum_hub --seed``."""
    first = next(iter(settings.FORUM_COLLECTIONS))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({first: second_lab_objects()}, indent=1))
    return path
