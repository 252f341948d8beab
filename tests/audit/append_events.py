"""Run as a separate process by test_concurrency: append N audit events as fast as possible.

First every writer records one event and holds its transaction open until all writers have done so
(possible only if an open transaction does not hold the chain); then it appends freely, every fifth
transaction rolled back and every seventh a ``record_many`` of three events.
"""

import sys
import time
from pathlib import Path

import django

ROLLED_BACK_EVERY, MANY_EVERY = 5, 7


class RolledBack(Exception):
    pass


def main(count: int, start_flag: Path, label: str, writers: int) -> None:
    django.setup()
    from django.db import transaction

    from reviewapp.audit.actions import AuditAction
    from reviewapp.audit.services import Actor, Entry, record, record_many

    actor = Actor(type="system", id=label, display=label)
    while not start_flag.exists():  # all writers start together, to collide as much as possible
        time.sleep(0.005)
    inside = start_flag.parent / f"inside-{label}"
    with transaction.atomic():
        record(actor=actor, action=AuditAction.STAFF_CREATED, data={"writer": label, "i": "open"})
        inside.touch()
        deadline = time.monotonic() + 30
        while len(list(start_flag.parent.glob("inside-*"))) < writers:
            if time.monotonic() > deadline:
                sys.exit(f"{label}: the other writers never recorded while my transaction was open")
            time.sleep(0.005)
    for i in range(count):
        try:
            with transaction.atomic():
                if i % MANY_EVERY == 0:
                    record_many([Entry(actor=actor, action=AuditAction.STAFF_CREATED,
                                       data={"writer": label, "i": i, "part": part}) for part in range(3)])
                else:
                    record(actor=actor, action=AuditAction.STAFF_CREATED, data={"writer": label, "i": i})
                if i % ROLLED_BACK_EVERY == 0:
                    raise RolledBack
        except RolledBack:
            pass


def committed_per_writer(count: int) -> int:
    """How many events one writer leaves behind (the open-transaction event included)."""
    kept = [i for i in range(count) if i % ROLLED_BACK_EVERY != 0]
    return 1 + sum(3 if i % MANY_EVERY == 0 else 1 for i in kept)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
