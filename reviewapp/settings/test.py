"""The test suite: development settings with a fast password hasher and no debug toolbar noise."""

import os

from .dev import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_RATE_LIMIT = "5/m"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Each test process gets its own queues, so a running `make run` worker (or another test process)
# never takes a test's task. Child workers inherit the prefix through the environment.
CELERY_QUEUE_PREFIX = os.environ.get("CELERY_QUEUE_PREFIX") or f"test{os.getpid()}-"
# No witness unless a test starts one (a checkpoint would otherwise queue a delivery to a port nobody serves).
AUDIT_WITNESS_URL = os.environ.get("AUDIT_WITNESS_URL", "")
