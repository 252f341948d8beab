"""Run as a separate process by test_concurrency: append N audit events as fast as possible."""

import sys
import time
from pathlib import Path

import django


def main(count: int, start_flag: Path, label: str) -> None:
    django.setup()
    from reviewapp.audit.actions import AuditAction
    from reviewapp.audit.services import Actor, record

    actor = Actor(type="system", id=label, display=label)
    while not start_flag.exists():  # all writers start together, to collide as much as possible
        time.sleep(0.005)
    for i in range(count):
        record(actor=actor, action=AuditAction.STAFF_CREATED, data={"writer": label, "i": i})


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
