"""What the DSA Transparency Database API accepts: our transcription of the Commission's validation rules.

Transcribed (not copied) from the Commission's own code, repository
``digital-services-act/transparency-database`` at commit ``69e80a0bc8eb3cbfbe8246e898194c3bdf490a4b``
(2026-06-24, the newest commit as of mid-2026):

- ``app/Http/Requests/StatementStoreRequest.php`` — ``rules()``: one statement, ``POST /api/v1/statement``;
- ``app/Services/GroupedSubmissionsService.php`` — ``multi_rules()``: each statement of a batch, and
  ``app/Http/Controllers/Api/v1/StatementMultipleAPIController.php`` — ``POST /api/v1/statements`` takes
  ``{"statements": [...]}`` with ``required|array|between:1,100`` and refuses a batch whose puids repeat;
- ``app/Models/Statement.php`` — the enums (the API takes the constant *names*, e.g.
  ``DECISION_ACCOUNT_SUSPENDED``, except ``automated_detection`` and ``incompatible_content_illegal``,
  which take the values ``Yes``/``No``);
- ``app/Services/EuropeanCountriesService.php`` (``EUROPEAN_COUNTRY_CODES``, the EEA) and
  ``app/Services/EuropeanLanguagesService.php`` (``ALL_LANGUAGES``, ISO 639-1 upper case).

Laravel semantics kept: ``required`` refuses a missing key, ``null``, a blank string and an empty list;
``max:N`` on a string counts characters; ``date_format:Y-m-d`` is strict (``2026-1-5`` fails);
``exclude_unless`` drops a field the condition does not ask for (so it is never an error);
``required_without_all`` on the four restriction fields means at least one of them is present.
One deliberate strictness: a key the API does not know is an error here, because Laravel keeps only
validated keys and would silently drop it — whatever we send must be what the database stores.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

COMMISSION_REPOSITORY = "digital-services-act/transparency-database"
COMMISSION_COMMIT = "69e80a0bc8eb3cbfbe8246e898194c3bdf490a4b"
BATCH_MAX = 100  # StatementMultipleAPIController: 'statements' => 'required|array|between:1,100'

DECISION_VISIBILITIES = frozenset({
    "DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED", "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED", "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
})
DECISION_MONETARIES = frozenset({
    "DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER"})
DECISION_PROVISIONS = frozenset({
    "DECISION_PROVISION_PARTIAL_SUSPENSION", "DECISION_PROVISION_TOTAL_SUSPENSION",
    "DECISION_PROVISION_PARTIAL_TERMINATION", "DECISION_PROVISION_TOTAL_TERMINATION",
})
DECISION_ACCOUNTS = frozenset({"DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"})
ACCOUNT_TYPES = frozenset({"ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"})
DECISION_GROUNDS = frozenset({"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"})
YES_NO = frozenset({"Yes", "No"})  # AUTOMATED_DETECTIONS and INCOMPATIBLE_CONTENT_ILLEGALS: values
CONTENT_TYPES = frozenset({
    "CONTENT_TYPE_APP", "CONTENT_TYPE_AUDIO", "CONTENT_TYPE_IMAGE", "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA", "CONTENT_TYPE_TEXT", "CONTENT_TYPE_VIDEO", "CONTENT_TYPE_OTHER",
})
SOURCE_TYPES = frozenset({
    "SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION", "SOURCE_VOLUNTARY"})
AUTOMATED_DECISIONS = frozenset({
    "AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED"})
STATEMENT_CATEGORIES = frozenset({
    "STATEMENT_CATEGORY_ANIMAL_WELFARE", "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE", "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS", "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE", "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD", "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS", "STATEMENT_CATEGORY_VIOLENCE",
})
KEYWORDS = frozenset("KEYWORD_" + name for name in """
    ADULT_SEXUAL_MATERIAL AGE_SPECIFIC_RESTRICTIONS AGE_SPECIFIC_RESTRICTIONS_MINORS ANIMAL_HARM
    BIOMETRIC_DATA_BREACH BULLYING_AGAINST_GIRLS CHILD_SEXUAL_ABUSE_MATERIAL CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE
    CONTENT_PROMOTING_EATING_DISORDERS COORDINATED_HARM COPYRIGHT_INFRINGEMENT CYBER_BULLYING_INTIMIDATION
    CYBER_HARASSMENT CYBER_HARASSMENT_AGAINST_WOMEN CYBER_INCITEMENT CYBER_STALKING CYBER_STALKING_AGAINST_WOMEN
    DATA_FALSIFICATION DEFAMATION DESIGN_INFRINGEMENT DISCRIMINATION FEMALE_GENDERED_DISINFORMATION
    GEOGRAPHIC_INDICATIONS_INFRINGEMENT GEOGRAPHICAL_REQUIREMENTS GOODS_SERVICES_NOT_PERMITTED
    GROOMING_SEXUAL_ENTICEMENT_MINORS HATE_SPEECH HIDDEN_ADVERTISEMENT HUMAN_EXPLOITATION HUMAN_TRAFFICKING
    ILLEGAL_ORGANIZATIONS IMPERSONATION_ACCOUNT_HIJACKING INAUTHENTIC_ACCOUNTS INAUTHENTIC_LISTINGS
    INAUTHENTIC_USER_REVIEWS INCITEMENT_AGAINST_WOMEN INCITEMENT_VIOLENCE_HATRED
    INSUFFICIENT_INFORMATION_ON_TRADERS LANGUAGE_REQUIREMENTS MISINFORMATION_DISINFORMATION
    MISLEADING_INFO_CONSUMER_RIGHTS MISLEADING_INFO_GOODS_SERVICES MISSING_PROCESSING_GROUND
    NON_CONSENSUAL_IMAGE_SHARING NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN NON_CONSENSUAL_MATERIAL_DEEPFAKE
    NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN NONCOMPLIANCE_PRICING NUDITY PATENT_INFRINGEMENT PHISHING
    PROHIBITED_PRODUCTS PYRAMID_SCHEMES RIGHT_TO_BE_FORGOTTEN RISK_ENVIRONMENTAL_DAMAGE RISK_PUBLIC_HEALTH
    SELF_MUTILATION STALKING SUICIDE TERRORIST_CONTENT TRADE_SECRET_INFRINGEMENT TRADEMARK_INFRINGEMENT
    TRAFFICKING_WOMEN_GIRLS UNLAWFUL_SALE_ANIMALS UNSAFE_CHALLENGES UNSAFE_PRODUCTS VIOLATION_EU_LAW
    VIOLATION_NATIONAL_LAW OTHER
""".split())  # noqa: SIM905 -- a word list reads like the PHP constants it transcribes
# EuropeanCountriesService::EUROPEAN_COUNTRY_CODES: the 27 member states and Iceland, Liechtenstein, Norway.
EEA_COUNTRY_CODES = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT",
    "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
)
LANGUAGES = frozenset("""
    AB AA AF AK SQ AM AR AN HY AS AV AE AY AZ BM BA EU BE BN BH BI BS BR BG MY CA KM CH CE NY ZH CU CV KW CO
    CR HR CS DA DV NL DZ EN EO ET EE FO FJ FI FR FF GD GL LG KA DE KI EL KL GN GU HT HA HE HZ HI HO HU IS IO
    IG ID IA IE IU IK GA IT JA JV KN KR KS KK RW KV KG KO KJ KU KY LO LA LV LB LI LN LT LU MK MG MS ML MT GV
    MI MR MH RO MN NA NV ND NG NE SE NO NB NN II OC OJ OR OM OS PI PA PS FA PL PT QU RM RN RU SM SG SA SC SR
    SN SD SI SK SL SO ST NR ES SU SW SS SV TL TY TG TA TT TE TH BO TI TO TS TN TR TK TW UG UK UR UZ VE VI VO
    WA CY FY WO XH YI YO ZA ZU
""".split())  # noqa: SIM905 -- a word list reads like the PHP constants it transcribes

RESTRICTIONS = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")
# field: (maximum characters) for the free-text fields with a 'max:N' rule.
MAX_LENGTHS = {
    "decision_visibility_other": 500, "decision_monetary_other": 500, "category_specification_other": 500,
    "decision_ground_reference_url": 500, "illegal_content_legal_ground": 500,
    "illegal_content_explanation": 2000, "incompatible_content_ground": 500,
    "incompatible_content_explanation": 2000, "content_type_other": 500, "decision_facts": 5000,
    "source_identity": 500, "puid": 500,
}
# field: (earliest, latest), both inclusive; None where the rules set no bound.
DATES = {
    "content_date": (datetime.date(2000, 1, 1), datetime.date(2038, 1, 1)),
    "application_date": (datetime.date(2020, 1, 1), datetime.date(2038, 1, 1)),
    "end_date_account_restriction": (None, datetime.date(2038, 1, 1)),
    "end_date_monetary_restriction": (None, datetime.date(2038, 1, 1)),
    "end_date_service_restriction": (None, datetime.date(2038, 1, 1)),
    "end_date_visibility_restriction": (None, datetime.date(2038, 1, 1)),
}
REQUIRED = ("decision_ground", "content_type", "category", "content_date", "application_date",
            "decision_facts", "source_type", "automated_detection", "automated_decision", "puid")
KNOWN_FIELDS = frozenset({
    *RESTRICTIONS, *MAX_LENGTHS, *DATES, *REQUIRED, "account_type", "category_specification",
    "category_addition", "territorial_scope", "content_language", "incompatible_content_illegal",
    "content_id", "content_id_ean",
})
PUID = re.compile(r"[a-zA-Z0-9_-]+")
EAN_13 = re.compile(r"[0-9]{13}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
URL = re.compile(r"https?://[^\s/$.?#][^\s]*", re.IGNORECASE)


def _blank(value: Any) -> bool:
    """Laravel's ``required`` fails for these (strings are trimmed by the API's middleware first)."""
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, list | tuple | dict) and not value)


def statement_errors(statement: Mapping[str, Any], *, in_batch: bool = False) -> dict[str, list[str]]:
    """Every rule one statement breaks, as ``{field: [reasons]}``; empty when the API would accept it.

    ``in_batch`` applies ``multi_rules()`` (the batch endpoint) instead of ``StatementStoreRequest``: the
    two differ only in that a batch keeps ``source_identity`` for ``SOURCE_VOLUNTARY`` (nullable) where
    the single endpoint excludes it.
    """
    errors: dict[str, list[str]] = {}
    s = dict(statement)

    def bad(field: str, reason: str) -> None:
        errors.setdefault(field, []).append(reason)

    def present(field: str) -> bool:
        return not _blank(s.get(field))

    def one_of(field: str, allowed: frozenset[str], *, is_list: bool = False) -> None:
        value = s.get(field)
        if value is None:
            return
        if is_list:
            if not isinstance(value, list):
                bad(field, "must be a list")
                return
            for item in value:
                if not isinstance(item, str) or item not in allowed:
                    bad(field, f"{item!r} is not one of the API's values")
        elif not isinstance(value, str) or value not in allowed:
            bad(field, f"{value!r} is not one of the API's values")

    for field in sorted(set(s) - KNOWN_FIELDS):
        bad(field, "not a field of the API (it would be dropped silently)")

    for field in REQUIRED:
        if not present(field):
            bad(field, "required")
    if not any(present(field) for field in RESTRICTIONS):
        for field in RESTRICTIONS:
            bad(field, f"required when none of {', '.join(f for f in RESTRICTIONS if f != field)} is present")

    one_of("decision_visibility", DECISION_VISIBILITIES, is_list=True)
    one_of("decision_monetary", DECISION_MONETARIES)
    one_of("decision_provision", DECISION_PROVISIONS)
    one_of("decision_account", DECISION_ACCOUNTS)
    one_of("account_type", ACCOUNT_TYPES)
    one_of("category_specification", KEYWORDS, is_list=True)
    one_of("decision_ground", DECISION_GROUNDS)
    one_of("content_type", CONTENT_TYPES, is_list=True)
    one_of("category", STATEMENT_CATEGORIES)
    one_of("category_addition", STATEMENT_CATEGORIES, is_list=True)
    one_of("territorial_scope", frozenset(EEA_COUNTRY_CODES), is_list=True)
    one_of("content_language", LANGUAGES)
    one_of("source_type", SOURCE_TYPES)
    one_of("automated_detection", YES_NO)
    one_of("automated_decision", AUTOMATED_DECISIONS)

    # required_if / exclude_unless: a conditional field is required when its condition holds, and is
    # excluded (never checked, never stored) when it does not.
    visibility = s.get("decision_visibility") if isinstance(s.get("decision_visibility"), list) else []
    content_type = s.get("content_type") if isinstance(s.get("content_type"), list) else []
    ground = s.get("decision_ground")
    conditional = {
        "decision_visibility_other": "DECISION_VISIBILITY_OTHER" in visibility,
        "decision_monetary_other": s.get("decision_monetary") == "DECISION_MONETARY_OTHER",
        "content_type_other": "CONTENT_TYPE_OTHER" in content_type,
        "illegal_content_legal_ground": ground == "DECISION_GROUND_ILLEGAL_CONTENT",
        "illegal_content_explanation": ground == "DECISION_GROUND_ILLEGAL_CONTENT",
        "incompatible_content_ground": ground == "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_explanation": ground == "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    }
    excluded = {field for field, applies in conditional.items() if not applies}
    if ground != "DECISION_GROUND_INCOMPATIBLE_CONTENT":
        excluded.add("incompatible_content_illegal")
    if not in_batch and s.get("source_type") == "SOURCE_VOLUNTARY":
        excluded.add("source_identity")
    for field, applies in conditional.items():
        if applies and not present(field):
            bad(field, "required")
    if "incompatible_content_illegal" not in excluded:
        one_of("incompatible_content_illegal", YES_NO)

    for field, limit in MAX_LENGTHS.items():
        value = s.get(field)
        if field in excluded or value is None:
            continue
        if not isinstance(value, str):
            bad(field, "must be a string")
        elif len(value.strip()) > limit:
            bad(field, f"longer than {limit} characters ({len(value.strip())})")

    for field, (earliest, latest) in DATES.items():
        value = s.get(field)
        if value is None:
            continue
        try:
            if not (isinstance(value, str) and DATE.fullmatch(value)):
                raise ValueError
            day = datetime.date.fromisoformat(value)
        except ValueError:
            bad(field, f"{value!r} does not match the format YYYY-MM-DD")
            continue
        if earliest and day < earliest:
            bad(field, f"before {earliest.isoformat()}")
        if latest and day > latest:
            bad(field, f"after {latest.isoformat()}")

    puid = s.get("puid")
    if isinstance(puid, str) and puid and not PUID.fullmatch(puid):
        bad("puid", "only letters, digits, '-' and '_'")
    url = s.get("decision_ground_reference_url")
    if url is not None and not (isinstance(url, str) and URL.fullmatch(url)):
        bad("decision_ground_reference_url", "not a URL")
    content_id = s.get("content_id")
    if content_id is not None:
        if not isinstance(content_id, dict):
            bad("content_id", "must be an object")
        elif "EAN-13" in content_id and not (isinstance(content_id["EAN-13"], str)
                                              and EAN_13.fullmatch(content_id["EAN-13"])):
            bad("content_id.EAN-13", "13 digits")
    ean = s.get("content_id_ean")
    if ean is not None and not (isinstance(ean, str) and EAN_13.fullmatch(ean)):
        bad("content_id_ean", "13 digits")
    return errors


def batch_errors(body: Mapping[str, Any]) -> dict[str, Any]:
    """Every rule a ``POST /api/v1/statements`` body breaks; empty when the API would accept it.

    Errors of statement *i* sit under ``statement_<i>`` as the API reports them.
    """
    statements = body.get("statements") if isinstance(body, Mapping) else None
    if not isinstance(statements, list) or not statements:
        return {"statements": ["required: a list of 1 to 100 statements"]}
    errors: dict[str, Any] = {}
    if len(statements) > BATCH_MAX:
        errors["statements"] = [f"at most {BATCH_MAX} statements ({len(statements)})"]
    if set(body) - {"statements"}:
        errors.setdefault("statements", []).append(f"unknown keys {sorted(set(body) - {'statements'})}")
    seen: set[str] = set()
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            errors[f"statement_{index}"] = {"statement": ["must be an object"]}
            continue
        found = statement_errors(statement, in_batch=True)
        puid = statement.get("puid")
        if isinstance(puid, str) and puid in seen:
            found.setdefault("puid", []).append("repeats a puid of this batch")
        seen.add(puid)
        if found:
            errors[f"statement_{index}"] = found
    return errors
