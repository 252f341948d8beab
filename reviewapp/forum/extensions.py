"""Our STIX 2.1 property extensions (FORUM.md "Wire format": plain ``x_`` properties are deprecated).

Each extension-definition is published OUT OF BAND (``extension_definitions()``, served as JSON by a page, or
a collection of its own), never in the shared trust-group collections: medallion 3.0.0 answers 500 to every
read that would include an extension-definition (it parses ``version`` "1.0.0" as a timestamp).

The ids are fixed: a receiver keys on them.
"""

from __future__ import annotations

import stix2

# Who defines the extensions: a fixed identity of the product, not of a deployment.
EXTENSIONS_AUTHOR_ID = "identity--2f0c7e4e-4a2b-5d0e-9c61-0b6a3f7d5e11"
EXTENSIONS_CREATED = "2026-12-01T00:00:00.000Z"

# indicator: the structure of a prompt template, never the prompt (template_simhash64, slot_count, daily rates).
PROMPT_FINGERPRINT_EXT = "extension-definition--7c1e4a52-93d0-4b7e-8f5a-1d2c3b4a5e60"
# sighting: rounded volume statistics, small counts suppressed.
VOLUME_STATS_EXT = "extension-definition--4b8d2f61-0e3a-4c9b-a7d5-6e1f2a3b4c71"
# user-account and organisation identity: how the pseudonym was made (scheme, key id) so the key can rotate.
PSEUDONYM_EXT = "extension-definition--9a3f5c72-1b4d-4e8a-b6c9-7d2e3f4a5b82"

_DEFINITIONS = {
    PROMPT_FINGERPRINT_EXT: ("reviewapp prompt-structure fingerprint",
                             "A 64-bit simhash of a prompt template's skeleton (slots removed), its slot count and the "
                             "per-account daily request rate percentiles (p50, p95) seen with it. Never prompt text."),
    VOLUME_STATS_EXT: ("reviewapp volume statistics",
                       "Rounded counts (2 significant digits) of accounts and requests behind a sighting; a count "
                       "below the sharer's threshold is omitted and marked suppressed."),
    PSEUDONYM_EXT: ("reviewapp keyed pseudonym",
                    "The object's identifier is a keyed pseudonym: scheme hmac-sha256 over '<kind>:<identifier>' "
                    "under the Forum key named by key_id."),
}


def extension_definitions() -> list[stix2.ExtensionDefinition]:
    """The definitions to publish out of band (never in a trust-group collection)."""
    return [
        stix2.ExtensionDefinition(
            id=ext_id, created_by_ref=EXTENSIONS_AUTHOR_ID, created=EXTENSIONS_CREATED, modified=EXTENSIONS_CREATED,
            name=name, description=description, schema=description, version="1.0.0",
            extension_types=["property-extension"],
        )
        for ext_id, (name, description) in _DEFINITIONS.items()
    ]
