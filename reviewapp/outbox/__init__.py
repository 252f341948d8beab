"""The transactional outbox: external effects (enforcement webhooks, emails, later TAXII pushes) are
written as rows in the same transaction as the change that causes them, and delivered by Celery
(DESIGN.md invariant 7). Uses nothing of ours but ``reviewapp.audit``."""
