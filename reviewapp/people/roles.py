"""The roles of DESIGN.md as Django groups, and the model permissions each one holds.

This mapping is the single source of truth: the migration creates the groups from it and every
``migrate`` brings the groups back in line with it. Later apps add their permissions here.
Per-object rights (a case's assignee, an appeal's appellant) are django-guardian object permissions
granted by services, not listed here.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import models


class Role(models.TextChoices):
    REVIEWER = "reviewer", "Reviewer"
    SENIOR_REVIEWER = "senior_reviewer", "Senior reviewer"
    SHARING_OFFICER = "sharing_officer", "Sharing officer"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    ADMIN = "admin", "Admin"


ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.REVIEWER: "Claims cases from queues, reads the evidence of cases assigned to them, decides under policy.",
    Role.SENIOR_REVIEWER: "Everything a reviewer does, plus second approval of severe actions and appeals.",
    Role.SHARING_OFFICER: "Previews, approves, rejects and revokes what is shared with the Forum.",
    Role.COMPLIANCE_OFFICER: "Reads everything, including the audit trail; verifies the chain; changes nothing.",
    Role.ADMIN: "Manages staff, detectors and their tokens, and publishes policy versions.",
}

_CASE_SUMMARIES = {"cases.view_case", "cases.view_account", "cases.view_campaign"}
# Every role reads the documented policy: decisions, approvals, appeals and shares all cite its clauses.
_POLICY = {"policy.view_policy", "policy.view_policyversion", "policy.view_clause"}
# Forum sharing (reviewapp/forum): reviewers propose, sharing officers approve and withdraw, compliance reads.
_FORUM_READ = {"forum.view_shareproposal", "forum.view_forumpush", "forum.view_sharedobject"}
# What other labs shared with us, and its matches against our accounts: read by sharing officers (who act on it)
# and compliance officers (who read everything); giving feedback stays forum.approve_share.
_INBOUND_READ = {"forum.view_inboundobject", "forum.view_inboundmatch"}
# Decisions whose Forum intelligence a peer revoked: seniors look again (cases.approve_decision), compliance reads.
_REREVIEW_READ = {"forum.view_inboundrereview"}
_DECISION_RECORDS = {"cases.view_decision", "cases.view_statementofreasons", "cases.view_casenote"}
# Reviewers claim and decide; the evidence of a case comes with its claim (a guardian object permission).
_REVIEWER: set[str] = _CASE_SUMMARIES | _DECISION_RECORDS | _POLICY | {"cases.claim_case", "cases.add_casenote",
                                                                       "forum.propose_share"}
ROLE_PERMISSIONS: dict[Role, set[str]] = {
    Role.REVIEWER: _REVIEWER,
    # Appeal attachments: the appeal's reviewer opens them through the service, not by a global permission.
    Role.SENIOR_REVIEWER: _REVIEWER | {"cases.approve_decision", "appeals.decide_appeal", "appeals.view_appeal",
                                       "appeals.view_appealmessage",
                                       *_REREVIEW_READ,
                                       "compliance_quality.review_secondlook"},  # blind second looks
    Role.SHARING_OFFICER: _CASE_SUMMARIES | _POLICY | _FORUM_READ | _INBOUND_READ | {"forum.approve_share",
                                                                                   "forum.withdraw_share"},
    # Read-only by construction: only view_* and verify/export permissions, never add/change/delete.
    Role.COMPLIANCE_OFFICER: {
        "audit.view_auditevent", "audit.verify_chain", "people.view_user", *_CASE_SUMMARIES, *_DECISION_RECORDS,
        "cases.view_case_evidence",  # global: compliance reads every case's evidence (each opening audited)
        "appeals.view_appeal", "appeals.view_appealmessage", "appeals.view_appealattachment",
        *_POLICY,
        "flags.view_detector", "flags.view_detectortoken", "flags.view_flag", "flags.view_flagbatch",
        "outbox.view_outboxmessage",
        *_FORUM_READ, *_INBOUND_READ, *_REREVIEW_READ,
        # Quality (reviewapp/compliance/quality): drawing a sample is the console's own row, never a change to a
        # case or decision; seniors give the second looks.
        "compliance_quality.draw_secondlooksample", "compliance_quality.view_secondlooksample",
        "compliance_quality.view_secondlook", "compliance_quality.view_calibrationalert",
    },
    Role.ADMIN: {
        "people.view_user", "people.add_user", "people.change_user",
        "flags.view_detector", "flags.add_detector", "flags.change_detector",
        "flags.view_detectortoken", "flags.add_detectortoken", "flags.change_detectortoken",
        "outbox.view_outboxmessage",
        *_POLICY,
    },
}


def sync_groups(apps=None, *, strict: bool = True) -> None:
    """Create the role groups and give each exactly the permissions listed above.

    ``strict=False`` (the migration) skips permissions of apps not migrated yet; the ``post_migrate``
    sync that follows every ``migrate`` is strict and names any permission that does not exist.
    """
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    apps = apps or global_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, apps=apps)
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role.value)
        permissions = []
        for dotted in sorted(wanted):
            app_label, codename = dotted.split(".", 1)
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None:
                if not strict:
                    continue
                raise ImproperlyConfigured(f"role {role.value}: permission {dotted} does not exist")
            permissions.append(permission)
        group.permissions.set(permissions)


def sync_after_migrate(sender, **kwargs) -> None:
    sync_groups()
