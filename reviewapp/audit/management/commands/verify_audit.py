import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from reviewapp.audit.checkpoints import (
    CheckpointCheck,
    WitnessUnavailable,
    checkpoint_file_entries,
    checkpoints_compare,
    witness_checkpoints,
)
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify


class Command(BaseCommand):
    help = (
        "Recompute the whole audit hash chain (streaming, constant memory). Exit 0 and the count when "
        "intact; exit 1 and the sequence number of the first broken link when not. Says how many events "
        "lie after the last signed checkpoint (unwitnessed)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoints",
            action="store_true",
            help="also compare the chain with the signed checkpoints in AUDIT_CHECKPOINT_FILE "
            "(fails when there is none)",
        )
        parser.add_argument(
            "--witness",
            action="store_true",
            help="also compare the chain with the witness's copies of the checkpoints (GET AUDIT_WITNESS_URL; "
            "fails when it is not set, unreachable or holds none)",
        )
        parser.add_argument("--witness-url", default="", help="the witness to ask instead of AUDIT_WITNESS_URL "
                            "(implies --witness), e.g. http://127.0.0.1:PORT/witness/checkpoints")

    def handle(self, *args, checkpoints: bool, witness: bool, witness_url: str, **options):
        bar = tqdm(
            total=AuditEvent.objects.filter(seq__isnull=False).count(), unit=" events", desc="verifying",
            file=sys.stderr, disable=not sys.stderr.isatty(),
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
        if report.unsequenced:
            self.stdout.write(f"{report.unsequenced} committed events wait for the sequencer (not yet in the chain)")

        path = settings.AUDIT_CHECKPOINT_FILE
        failed = False
        if checkpoints and not settings.AUDIT_CHECKPOINT_KEY:
            self.stderr.write("AUDIT_CHECKPOINT_KEY is not set: the checkpoints' signatures cannot be checked")
            sys.exit(1)
        if settings.AUDIT_CHECKPOINT_KEY:
            local = checkpoints_compare(checkpoint_file_entries(path), key=settings.AUDIT_CHECKPOINT_KEY,
                                        head_seq=report.head_seq)
            if checkpoints:
                failed |= self._judge(local, report.head_seq, source=f"in {path}",
                                      nothing_found=f"NO CHECKPOINT FOUND in {path} (missing or empty)")
            else:
                self._tail(local, report.head_seq, where=str(path))
                if local.mismatches:
                    self.stderr.write(f"WARNING: {len(local.mismatches)} checkpoints in {path} disagree with the "
                                      "chain; run verify_audit --checkpoints")
        if witness or witness_url:
            failed |= self._compare_witness(report.head_seq, url=witness_url or settings.AUDIT_WITNESS_URL)
        if failed:
            sys.exit(1)

    def _compare_witness(self, head_seq: int, *, url: str) -> bool:
        if not url:
            self.stderr.write("AUDIT_WITNESS_URL is not set: there is no witness to compare with")
            return True
        if not settings.AUDIT_CHECKPOINT_KEY:
            self.stderr.write("AUDIT_CHECKPOINT_KEY is not set: the checkpoints' signatures cannot be checked")
            return True
        try:
            entries = witness_checkpoints(url)
        except WitnessUnavailable as exc:
            self.stderr.write(f"WITNESS UNAVAILABLE: {exc}")
            return True
        check = checkpoints_compare(entries, key=settings.AUDIT_CHECKPOINT_KEY, head_seq=head_seq,
                                    label="witness checkpoint")
        return self._judge(check, head_seq, source=f"held by the witness at {url}",
                           nothing_found=f"NO CHECKPOINT FOUND at the witness {url}")

    def _judge(self, check: CheckpointCheck, head_seq: int, *, source: str, nothing_found: str) -> bool:
        """Print the outcome of one comparison; True when it failed. No checkpoint at all fails closed."""
        for mismatch in check.mismatches:
            where = f" at event {mismatch.seq}" if mismatch.seq is not None else ""
            self.stderr.write(f"CHECKPOINT MISMATCH{where}: {mismatch.reason}")
        if check.last is None and head_seq > 0:
            self.stderr.write(f"{nothing_found}: none of the {head_seq} events is witnessed")
            return True
        if check.mismatches:
            return True
        self._tail(check, head_seq, where=source)
        plural = "s" if check.count != 1 else ""
        self.stdout.write(f"OK: chain agrees with the {check.count} signed checkpoint{plural} {source}")
        return False

    def _tail(self, check: CheckpointCheck, head_seq: int, *, where: str) -> None:
        if check.last is None:
            self.stdout.write(f"no checkpoint found in {where}: all {head_seq} events are unwitnessed")
            return
        tail = check.tail(head_seq)
        self.stdout.write(f"{tail} event{'s' if tail != 1 else ''} after the last checkpoint "
                          f"(seq {check.last.seq} at {check.last.at})")
