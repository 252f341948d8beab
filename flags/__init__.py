"""Detectors, their tokens, the flag schema, the ingestion API and bulk path, grouping into cases.

Built by the flags issue; depends on ``reviewapp.cases`` (never the other way round).
"""
