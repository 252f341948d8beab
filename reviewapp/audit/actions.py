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
    STAFF_API_TOKEN_CREATED = "staff.api_token_created", "Staff API token created"
    STAFF_API_TOKEN_REVOKED = "staff.api_token_revoked", "Staff API token revoked"
    STAFF_API_TOKEN_USED = "staff.api_token_used", "Staff API token used (first request of the day)"
    # Detectors and flags
    DETECTOR_CREATED = "detector.created", "Detector created"
    DETECTOR_UPDATED = "detector.updated", "Detector updated"
    DETECTOR_TOKEN_CREATED = "detector.token_created", "Detector token created"
    DETECTOR_TOKEN_REVOKED = "detector.token_revoked", "Detector token revoked"
    FLAGS_INGESTED = "flags.ingested", "Flags ingested"
    FLAGS_GROUPED = "flags.grouped", "Flags grouped into cases"
    FLAGS_SET_ASIDE = "flags.set_aside", "Flag set aside: grouping could not attach it"
    FLAGS_PARTITIONS_CREATED = "flags.partitions_created", "Monthly partitions of the flags table created ahead"
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
    EVIDENCE_PURGED = "evidence.purged", "Evidence removed under the retention policy"
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
    OUTBOX_BODIES_PURGED = "outbox.bodies_purged", "Delivered email bodies removed under the retention policy"
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
    # Forum sharing (reviewapp/forum; DESIGN.md invariant 6)
    SHARE_PROPOSED = "share.proposed", "Forum share proposed"
    SHARE_NARROWED = "share.narrowed", "Forum share narrowed (new version)"
    SHARE_RESEARCHER_INCLUDED = "share.researcher_included", "Researcher-programme account included in a share"
    SHARE_APPROVED = "share.approved", "Forum share approved"
    SHARE_REJECTED = "share.rejected", "Forum share rejected"
    SHARE_PUSH_REFUSED = "share.push_refused", "Forum push refused: the bundle differs from what was approved"
    SHARE_PUSHED = "share.pushed", "Bundle posted to the Forum hub"
    SHARE_PUSH_COMPLETED = "share.push_completed", "Forum hub finished processing a bundle"
    SHARE_WITHDRAWN = "share.withdrawn", "Forum share withdrawn"
    SHARE_OBJECTS_REVOKED = "share.objects_revoked", "Shared Forum objects revoked"
    SHARE_OBJECTS_DELETED = "share.objects_deleted", "Shared user-account objects deleted from the Forum hub"
    FORUM_INBOUND_PULLED = "forum.inbound_pulled", "Forum intelligence pulled"
    FORUM_INBOUND_MATCHED = "forum.inbound_matched", "Forum intelligence matched local data"
    FORUM_INBOUND_REVOKED = "forum.inbound_revoked", "A peer revoked Forum intelligence we had used"
    FORUM_FEEDBACK_PUBLISHED = "forum.feedback_published", "Feedback published to the Forum"
    # The chain itself
    AUDIT_CHECKPOINT = "audit.checkpoint", "Audit chain verified and checkpointed"
    AUDIT_CHAIN_BROKEN = "audit.chain_broken", "Audit chain found broken"
    # The compliance console (reviewapp/compliance): its own runs, never a change to a case, decision or share
    COMPLIANCE_VERIFICATION_STARTED = "compliance.verification_started", "Chain verification started from the console"
    COMPLIANCE_VERIFICATION_FINISHED = (
        "compliance.verification_finished",
        "Chain verification from the console finished",
    )
    COMPLIANCE_SAMPLE_DRAWN = "compliance.sample_drawn", "Decisions drawn for a blind second look"
    COMPLIANCE_SECOND_LOOK_RECORDED = "compliance.second_look_recorded", "Blind second review recorded"
    COMPLIANCE_CALIBRATION_ALERT_RAISED = "compliance.calibration_alert_raised", "Detector overturn-rate alert raised"
    COMPLIANCE_CALIBRATION_ALERT_CLEARED = (
        "compliance.calibration_alert_cleared",
        "Detector overturn-rate alert cleared",
    )
    COMPLIANCE_RETENTION_PURGED = "compliance.retention_purged", "Retention purge run (with its counts)"
    COMPLIANCE_RETENTION_DRY_RUN = "compliance.retention_dry_run", "Retention purge dry run reported"
    COMPLIANCE_EXPORTED = "compliance.exported", "Export downloaded (dataset, format, date range, rows)"
