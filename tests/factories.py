"""factory_boy factories for the data most tests start from, made only through the real services (STYLE.md):
detectors through ``flags.services.detector_ensure``, flags through ``flags_ingest`` (the schema, its bounds
and idempotency), cases through grouping (``flags.grouping.flags_group``, as the worker runs it), account
contact details through ``account_profile_set`` (audited). Nothing here writes a row directly, so seeded data
keeps every invariant the product keeps.

    cases = ingest_and_group(detector, [flag_payload(1), flag_payload(2, account_id="acct_1")])
    case = FlaggedCaseFactory(account_id="acct_a", contact_email="holder@example.org")
"""

from __future__ import annotations

import json

import factory

from flags.models import Detector, Flag
from flags.services import detector_ensure, flags_ingest
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Account, Case
from reviewapp.cases.services import account_profile_set
from tests.support import group_all_flags


class DetectorFactory(factory.Factory):
    """An active detector (``detector_ensure``: the same slug gives the same detector)."""

    class Meta:
        model = Detector

    slug = "template-miner"
    name = factory.LazyAttribute(lambda detector: detector.slug.replace("-", " ").capitalize())
    owner_team = "T&S detection"

    @classmethod
    def _create(cls, model_class, **fields):
        return detector_ensure(actor=SYSTEM, **fields)


class FlagPayloadFactory(factory.DictFactory):
    """A valid schema-v1 flag body, as a detector posts it; ``n`` names it (``f-<n>``, account ``acct_<n>``)."""

    class Params:
        n = factory.Sequence(lambda n: n)

    external_id = factory.LazyAttribute(lambda flag: f"f-{flag.n}")
    detector = "template-miner"
    detector_version = "3.2.0"
    account_id = factory.LazyAttribute(lambda flag: f"acct_{flag.n}")
    signal = "templated_prompts"
    score = 0.8
    observed_from = "2026-11-20T00:00:00Z"
    observed_to = "2026-11-21T00:00:00Z"
    request_count = 1200


def ingest_and_group(detector: Detector, flags: list[dict]) -> list[Case]:
    """Post ``flags`` through the real ingestion (as ``detector``'s token would), group them as the worker
    does, and return the cases of their accounts, oldest first. Any flag the ingestion rejects fails the
    test here, naming why, instead of leaving it without the case it was meant to make."""
    result = flags_ingest(items=[(i, json.dumps(flag).encode()) for i, flag in enumerate(flags)],
                          detector=detector, actor=SYSTEM)
    assert not result.rejected, f"seed flags rejected: {result.rejected}"
    group_all_flags()
    accounts = {flag["account_id"] for flag in flags}
    return list(Case.objects.filter(account__external_id__in=accounts).select_related("account").order_by("pk"))


def account_contact_set(account_id: str, email: str) -> Account:
    """The account's contact email, set as staff set it (audited)."""
    return account_profile_set(actor=SYSTEM, account=Account.objects.get(external_id=account_id),
                               contact_email=email)


class FlaggedCaseFactory(factory.Factory):
    """One account's open case, from ``flags`` real flags of ``detector`` (ingested, then grouped).

    ``flag`` overrides fields of every flag (``flag={"evidence": {...}}``); ``contact_email`` sets the
    holder's address through ``account_profile_set``.
    """

    class Meta:
        model = Case

    detector = factory.SubFactory(DetectorFactory)
    account_id = factory.Sequence(lambda n: f"acct_{n}")
    flags = 1
    flag = factory.Dict({})
    contact_email = None

    @classmethod
    def _create(cls, model_class, *, detector, account_id, flags, flag, contact_email):
        earlier = Flag.objects.filter(account_external_id=account_id).count()  # external ids stay unique
        payloads = [FlagPayloadFactory(n=f"{account_id}-{earlier + i + 1}", detector=detector.slug,
                                       account_id=account_id, **flag) for i in range(flags)]
        ingest_and_group(detector, payloads)
        if contact_email is not None:
            account_contact_set(account_id, contact_email)
        return (Case.objects.select_related("account")
                .get(account__external_id=account_id, state__in=Case.OPEN_STATES))
