"""The case-management core: flagged accounts, campaigns, cases and their workflow.

Flags attach to cases here (through ``services.flags_group``); later issues add claiming, decisions,
enforcement and statements of reasons.
"""
