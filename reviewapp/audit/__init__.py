"""The tamper-evident audit trail (DESIGN.md invariant 1).

Services call :func:`reviewapp.audit.services.record` inside their own transaction; nothing else
writes here. The table refuses UPDATE, DELETE and TRUNCATE (database triggers), every event hashes
the one before it, and ``manage.py verify_audit`` recomputes the chain.
"""
