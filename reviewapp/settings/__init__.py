"""Settings: ``base`` holds everything, read from the environment; ``dev``, ``test`` and
``production`` only change what differs. ``manage.py`` and Celery default to ``dev``; the WSGI
entry point defaults to ``production``."""
