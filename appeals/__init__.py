"""The account-holder portal, appeal filing and review, and outcomes.

Built by the appeals issue; depends on ``reviewapp.cases`` (never the other way round).
"""
