"""kombu's SQLAlchemy transport polling every 0.1 s rather than every second (reviewapp.celery says why)."""

from kombu.transport.sqlalchemy import Transport as SqlaTransport


class Transport(SqlaTransport):
    polling_interval = 0.1
