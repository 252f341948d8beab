from django.core.management.base import BaseCommand, CommandError

from flags.partitions import MONTHS_AHEAD, flag_partitions, flags_in_default_partition, flags_partitions_ensure
from reviewapp.audit.services import Actor


class Command(BaseCommand):
    help = ("Create the missing monthly partitions of the flags table for this month and the next ones (idempotent; "
            "the maintenance task does the same daily), then list the partitions.")

    def add_arguments(self, parser):
        parser.add_argument("--months-ahead", type=int, default=MONTHS_AHEAD,
                            help=f"months after this one to have partitions for (0-24, default {MONTHS_AHEAD})")
        parser.add_argument("--list", action="store_true", help="only list the partitions; create nothing")

    def handle(self, *args, months_ahead, list, **options):
        if not list:
            if not 0 <= months_ahead <= 24:
                raise CommandError("--months-ahead must be between 0 and 24")
            created = flags_partitions_ensure(
                months_ahead=months_ahead,
                actor=Actor(type="system", id="manage.py flags_partitions", display="flags_partitions command"))
            self.stdout.write(f"created {len(created)} partition(s){': ' + ', '.join(created) if created else ''}")
        for partition in flag_partitions():
            rows = "never analysed" if partition.rows < 0 else f"~{partition.rows:,} rows"
            self.stdout.write(f"  {partition.name:<22} {partition.bounds}  ({rows})")
        stray = flags_in_default_partition()
        if stray:
            self.stdout.write(self.style.WARNING(
                f"{stray:,} flag(s) in the DEFAULT partition: they move to their month's partition when it is created"))
