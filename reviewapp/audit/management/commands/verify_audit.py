import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify, checkpoints_compare


class Command(BaseCommand):
    help = (
        "Recompute the whole audit hash chain (streaming, constant memory). Exit 0 and the count when "
        "intact; exit 1 and the sequence number of the first broken link when not."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoints",
            action="store_true",
            help="also compare the chain with the signed checkpoints kept outside the database",
        )

    def handle(self, *args, checkpoints: bool, **options):
        bar = tqdm(
            total=AuditEvent.objects.count(), unit=" events", desc="verifying", file=sys.stderr,
            disable=not sys.stderr.isatty(),
        )

        def progress(count: int) -> None:
            bar.update(count - bar.n)

        report = chain_verify(progress=progress)
        bar.close()
        if not report.ok:
            self.stderr.write(f"BROKEN at event {report.broken_seq}: {report.reason}")
            self.stdout.write(f"{report.count} events verified before the break")
            sys.exit(1)
        self.stdout.write(f"OK: {report.count} events, chain intact, head {report.head_seq} {report.head_hash}")
        if checkpoints:
            mismatches = checkpoints_compare(path=settings.AUDIT_CHECKPOINT_FILE, key=settings.AUDIT_CHECKPOINT_KEY)
            for mismatch in mismatches:
                self.stderr.write(f"CHECKPOINT MISMATCH at event {mismatch.seq}: {mismatch.reason}")
            if mismatches:
                sys.exit(1)
            self.stdout.write(f"OK: chain agrees with the signed checkpoints in {settings.AUDIT_CHECKPOINT_FILE}")
