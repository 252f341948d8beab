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
    # The chain itself
    AUDIT_CHECKPOINT = "audit.checkpoint", "Audit chain verified and checkpointed"
    AUDIT_CHAIN_BROKEN = "audit.chain_broken", "Audit chain found broken"
