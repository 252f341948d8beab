"""The outbox tests' real peers, the enforcement receiver and an SMTP server, are fixtures of tests/conftest.py
(``start_receiver``, ``smtp_server``), shared with the appeals and end-to-end tests; ``applied`` reads what the
receiver applied.
"""

from tests.conftest import applied  # noqa: F401 (test_delivery imports it from here)
