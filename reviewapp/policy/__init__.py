"""The documented Terms-of-Service policy: versions and clauses, loaded from policies/*.md.

A published version never changes (database triggers); a changed text is a new version, and every
decision keeps pointing at the clause text it was decided under (DESIGN.md invariant 4).
Uses nothing of ours but the audit trail.
"""
