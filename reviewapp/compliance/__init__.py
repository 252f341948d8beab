"""The compliance officer's console (DESIGN.md "compliance/"): decision register, audit explorer, evidence-access
log, second-look sampling, detector calibration, exports, transparency report, retention.

Compliance officers read everything and change nothing. The console sits below ``core`` and above ``forum``
(it reads shares and withdrawals), so it may read every app under it and nothing reads it but ``core``.
Each area is a package of its own; the ones that store something are Django apps of their own
(``compliance_verification``, ``compliance_quality``, ``compliance_retention``) so that each keeps its own
migrations.
"""
