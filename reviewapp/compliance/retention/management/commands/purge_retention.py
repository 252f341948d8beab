"""manage.py purge_retention [--dry-run] [--batch-size N]: the retention purge the daily beat task runs, or its
report of what it would remove (the console page's numbers, stored as a dry run)."""

from django.core.management.base import BaseCommand, CommandError

from reviewapp.compliance.retention.models import PurgeRun
from reviewapp.compliance.retention.selectors import groups_for_display
from reviewapp.compliance.retention.services import PurgeUnderWay, retention_purge


class Command(BaseCommand):
    help = "Purge evidence past its clauses' retention period and delivered email bodies (or report, --dry-run)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be removed; change nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per transaction (default: settings).")

    def handle(self, *args, dry_run: bool, batch_size: int | None, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            run = retention_purge(dry_run=dry_run, source=PurgeRun.Source.COMMAND, batch_size=batch_size)
        except PurgeUnderWay as exc:
            raise CommandError(str(exc)) from exc
        verb = "would remove" if dry_run else "removed"
        counts = run.counts
        self.stdout.write(f"Retention {'dry run' if dry_run else 'purge'} {run.pk} as of {run.as_of:%Y-%m-%d %H:%M:%S} "
                          f"UTC ({run.batches} batches):")
        for entry in groups_for_display(counts):
            self.stdout.write(f"  evidence {entry['label']}: {verb} the evidence of {entry['flags']} flags "
                              f"({entry['excerpts']} excerpts, {entry['cases']} cases); due since "
                              f"{entry['oldest_due']:%Y-%m-%d %H:%M} UTC")
        emails = counts["emails"]
        self.stdout.write(f"  email bodies: {verb} {emails['messages']} delivered emails' bodies"
                          + (f"; oldest delivered {emails['oldest_delivered']}" if emails["messages"] else ""))
        totals = counts["totals"]
        self.stdout.write(f"Total: {verb} the evidence of {totals['flags']} flags ({totals['excerpts']} excerpts, "
                          f"{totals['cases']} cases) and {totals['emails']} email bodies.")
