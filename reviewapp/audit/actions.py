"""Every audit action code, in one list. Add new codes here, never inline strings elsewhere."""

from django.db import models


class AuditAction(models.TextChoices):
    # Sessions of people
    AUTH_LOGIN = "auth.login", "Signed in"
    AUTH_LOGOUT = "auth.logout", "Signed out"
    AUTH_LOGIN_FAILED = "auth.login_failed", "Failed sign-in"
    # Staff management
    STAFF_CREATED = "staff.created", "Staff member created"
    STAFF_ROLE_CHANGED = "staff.role_changed", "Staff role changed"
    STAFF_DEACTIVATED = "staff.deactivated", "Staff member deactivated"
    STAFF_REACTIVATED = "staff.reactivated", "Staff member reactivated"
    STAFF_PASSWORD_RESET = "staff.password_reset", "Staff password reset"
    STAFF_PASSWORD_ISSUED = "staff.password_issued", "One-time password issued"
    STAFF_PASSWORD_CHANGED = "staff.password_changed", "Staff member changed their password"
    STAFF_SIGN_IN_UNLOCKED = "staff.sign_in_unlocked", "Locked sign-in unlocked"
    # Detectors and flags
    DETECTOR_CREATED = "detector.created", "Detector created"
    DETECTOR_UPDATED = "detector.updated", "Detector updated"
    DETECTOR_TOKEN_CREATED = "detector.token_created", "Detector token created"
    DETECTOR_TOKEN_REVOKED = "detector.token_revoked", "Detector token revoked"
    FLAGS_INGESTED = "flags.ingested", "Flags ingested"
    FLAGS_GROUPED = "flags.grouped", "Flags grouped into cases"
    FLAGS_SET_ASIDE = "flags.set_aside", "Flag set aside: grouping could not attach it"
    # Cases and campaigns
    CASE_OPENED = "case.opened", "Case opened"
    CASE_TRANSITIONED = "case.transitioned", "Case changed state"
    CASE_CAMPAIGN_LINKED = "case.campaign_linked", "Case linked to a campaign"
    CAMPAIGN_CREATED = "campaign.created", "Campaign created"
    ACCOUNT_PROFILE_UPDATED = "account.profile_updated", "Account profile updated"
    # Policy
    POLICY_VERSION_PUBLISHED = "policy.version_published", "Policy version published"
    # Review: claims, evidence, notes, decisions
    CASE_CLAIMED = "case.claimed", "Case claimed"
    CASE_RELEASED = "case.released", "Case released"
    CASE_CLAIM_LAPSED = "case.claim_lapsed", "Case claim lapsed"
    EVIDENCE_OPENED = "evidence.opened", "Raw evidence opened"
    CASE_NOTE_ADDED = "case.note_added", "Internal note added"
    DECISION_RECORDED = "decision.recorded", "Decision recorded"
    DECISION_TRANSITIONED = "decision.transitioned", "Decision changed state"
    DECISION_APPROVED = "decision.approved", "Decision approved (second reviewer)"
    DECISION_SENT_BACK = "decision.sent_back", "Decision sent back"
    DECISION_ENFORCED = "decision.enforced", "Decision enforced"
    DECISION_LIFTED = "decision.lifted", "Temporary action expired and lifted"
    STATEMENT_ISSUED = "statement.issued", "Statement of reasons issued"
    # Outbox (external deliveries: enforcement webhooks, emails)
    OUTBOX_DELIVERED = "outbox.delivered", "External delivery made"
    OUTBOX_FAILED = "outbox.failed", "External delivery given up"
    OUTBOX_RETRIED = "outbox.retried", "External delivery retried"
    # Account holders and appeals
    HOLDER_SIGNED_IN = "holder.signed_in", "Account holder signed in"
    HOLDER_LINK_REQUESTED = "holder.link_requested", "Account holder asked for a sign-in link"
    APPEAL_FILED = "appeal.filed", "Appeal filed"
    APPEAL_CLAIMED = "appeal.claimed", "Appeal assigned"
    APPEAL_TRANSITIONED = "appeal.transitioned", "Appeal changed state"
    APPEAL_MESSAGE = "appeal.message", "Appeal message"
    APPEAL_INFO_REQUESTED = "appeal.info_requested", "More information requested"
    APPEAL_DECIDED = "appeal.decided", "Appeal decided"
    ATTACHMENT_OPENED = "appeal.attachment_opened", "Appeal attachment opened"
    DECISION_REVERSED = "decision.reversed", "Decision reversed on appeal"
    # The chain itself
    AUDIT_CHECKPOINT = "audit.checkpoint", "Audit chain verified and checkpointed"
    AUDIT_CHAIN_BROKEN = "audit.chain_broken", "Audit chain found broken"
