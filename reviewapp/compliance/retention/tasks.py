"""Beat's daily retention purge (reviewapp/celery.py, settings RETENTION_PURGE_HOUR/MINUTE)."""

from celery import shared_task

from .models import PurgeRun
from .services import PurgeUnderWay, retention_purge


@shared_task(name="reviewapp.compliance.retention.tasks.purge_retention")
def purge_retention() -> dict:
    try:
        run = retention_purge(source=PurgeRun.Source.BEAT)
    except PurgeUnderWay:
        return {"skipped": "another retention purge is running"}
    return {"run": run.pk, **run.counts["totals"]}
