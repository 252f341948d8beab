"""Signed checkpoints of the audit chain's head, kept outside the database (DESIGN.md invariant 1).

A checkpoint is ``(seq, hash, at)`` of the sequenced head, signed with HMAC-SHA256 under
``AUDIT_CHECKPOINT_KEY``. Each one is appended to ``AUDIT_CHECKPOINT_FILE`` and, when
``AUDIT_WITNESS_URL`` is set, a copy leaves through the outbox (kind ``witness``) to a witness
outside this deployment. ``verify_audit --checkpoints`` / ``--witness`` compare the chain with them:
a rewrite that recomputed every later hash no longer matches a signed head, and a chain that ends
before a signed head was cut. Only what lies after the last checkpoint is unwitnessed, so beat
checkpoints every minute in which the chain grew, and ``make run`` checkpoints when it stops.

The checkpoint records its own ``audit.checkpoint`` event, which moves the head by one (and the
outbox records delivering its witness copy). A run that finds nothing but such events after the last
checkpoint writes nothing, so an idle system does not checkpoint (and grow the chain) forever; those
events are covered by the next checkpoint that something else calls for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .actions import AuditAction
from .chain import HASHED_FIELDS, link_hash
from .events import checkpoint_signed
from .models import AuditEvent
from .selectors import ChainReport, chain_verify, latest_checkpoint
from .sequencer import chain_head, sequence_pending
from .services import SYSTEM, record

logger = logging.getLogger(__name__)

# Serialises checkpoint runs (beat and `make run`'s stop); "auditcpt" as a bigint. Not the chain's lock.
_CHECKPOINT_LOCK_KEY = int.from_bytes(b"auditcpt", "big")
_COMPARE_CHUNK = 5000
_TAIL_BYTES = 64 * 1024
WITNESS_TIMEOUT_SECONDS = 10
WITNESS_KIND = "witness"
# A checkpoint verifies the links added since the last one; the whole chain at least this often.
FULL_VERIFICATION_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    signature: str
    key_id: str = ""

    @classmethod
    def from_json(cls, entry: Any) -> Checkpoint:
        """Raises ValueError for anything that is not a checkpoint."""
        if not isinstance(entry, dict):
            raise ValueError("not a JSON object")
        try:
            checkpoint = cls(seq=entry["seq"], hash=entry["hash"], at=entry["at"], signature=entry["signature"],
                             key_id=entry.get("key_id", ""))
        except KeyError as exc:
            raise ValueError(f"no {exc.args[0]!r}") from None
        texts = (checkpoint.hash, checkpoint.at, checkpoint.signature, checkpoint.key_id)
        if type(checkpoint.seq) is not int or not all(isinstance(value, str) for value in texts):
            raise ValueError("seq must be an integer and hash, at, signature, key_id strings")
        return checkpoint

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckpointMismatch:
    seq: int | None
    reason: str


@dataclass
class CheckpointCheck:
    """The outcome of comparing one set of checkpoints (the local file, or the witness's copies) with the chain."""

    count: int = 0
    mismatches: list[CheckpointMismatch] = field(default_factory=list)
    last: Checkpoint | None = None  # the authentic checkpoint with the highest seq

    def tail(self, head_seq: int) -> int:
        """How many events of the verified chain lie after the last checkpoint (unwitnessed)."""
        return max(head_seq - (self.last.seq if self.last else 0), 0)


class WitnessUnavailable(Exception):
    pass


def checkpoint_signature(*, key: str, seq: int, head_hash: str, at: str) -> str:
    message = json.dumps({"seq": seq, "hash": head_hash, "at": at}, sort_keys=True).encode()
    return hmac.new(key.encode(), message, "sha256").hexdigest()


def checkpoint_key_id(key: str) -> str:
    """Names the key a checkpoint was signed with (without revealing it), so a rotated key is recognisable."""
    return hashlib.sha256(b"reviewapp audit checkpoint key\0" + key.encode()).hexdigest()[:16]


def checkpoint_file_entries(path: Path) -> Iterator[Any]:
    """The entries of a checkpoint file, one per line (None for a line that is not JSON). Nothing if it is absent."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    yield None


def witness_checkpoints(url: str) -> list[Any]:
    """The witness's copies of our checkpoints (``GET AUDIT_WITNESS_URL``). Raises WitnessUnavailable."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"}, method="GET")  # noqa: S310
    if request.type not in {"http", "https"}:
        raise WitnessUnavailable(f"AUDIT_WITNESS_URL must be http(s), not {url!r}")
    try:
        with urllib.request.urlopen(request, timeout=WITNESS_TIMEOUT_SECONDS) as response:  # noqa: S310 — checked
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise WitnessUnavailable(f"HTTP {exc.code} from {url}") from exc
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WitnessUnavailable(f"could not read checkpoints from {url}: {reason}") from exc
    entries = body.get("checkpoints") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise WitnessUnavailable(f"{url} did not answer with a list of checkpoints")
    return entries


def _stored_hashes(seqs: list[int]) -> dict[int, str]:
    return dict(AuditEvent.objects.filter(seq__in=seqs).values_list("seq", "hash"))


def checkpoints_compare(entries: Iterable[Any], *, key: str, head_seq: int, label: str = "checkpoint line",
                        first_number: int = 1) -> CheckpointCheck:
    """Compare signed checkpoints with the chain as it is now, whose verified head is ``head_seq``.

    Catches a rewrite that recomputed every later hash (a signed head no longer matches), a chain cut
    short (it ends before a signed head), and a checkpoint that was not signed with our key.
    Streams: memory stays flat however many checkpoints there are.
    """
    check = CheckpointCheck()
    own_key_id = checkpoint_key_id(key)
    pending: list[Checkpoint] = []

    def where(number: int) -> str:
        return f"{label} {number}" if number else label

    def mismatch(seq: int | None, reason: str) -> None:
        check.mismatches.append(CheckpointMismatch(seq, reason))

    def compare_pending() -> None:
        stored = _stored_hashes([checkpoint.seq for checkpoint in pending])
        for checkpoint in pending:
            if checkpoint.seq not in stored:
                mismatch(checkpoint.seq, f"checkpointed event {checkpoint.seq} is gone")
            elif stored[checkpoint.seq] != checkpoint.hash:
                mismatch(checkpoint.seq,
                         f"event {checkpoint.seq} differs from its signed checkpoint at {checkpoint.at}")
        pending.clear()

    for number, entry in enumerate(entries, start=first_number):
        check.count += 1
        try:
            checkpoint = Checkpoint.from_json(entry)
        except ValueError as exc:
            mismatch(None, f"{where(number)} is not a checkpoint ({exc})")
            continue
        good = checkpoint_signature(key=key, seq=checkpoint.seq, head_hash=checkpoint.hash, at=checkpoint.at)
        if not hmac.compare_digest(good, checkpoint.signature):
            other_key = f" (signed with key {checkpoint.key_id}, ours is {own_key_id})" if (
                checkpoint.key_id and checkpoint.key_id != own_key_id) else ""
            mismatch(checkpoint.seq, f"{where(number)} has a bad signature{other_key}")
            continue
        if check.last is None or checkpoint.seq > check.last.seq:
            check.last = checkpoint
        if checkpoint.seq > head_seq:
            mismatch(checkpoint.seq,
                     f"chain ends at seq {head_seq} but checkpoint at {checkpoint.at} says seq {checkpoint.seq}")
            continue
        pending.append(checkpoint)
        if len(pending) >= _COMPARE_CHUNK:
            compare_pending()
    if pending:
        compare_pending()
    return check


def _last_checkpoint(path: Path) -> Checkpoint | None:
    """The file's last checkpoint, read from its end: the file grows by a line a minute, for years."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - _TAIL_BYTES, 0))
            tail = handle.read()
    except FileNotFoundError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            return Checkpoint.from_json(json.loads(line))
        except ValueError:  # a damaged line, or the window's first line cut in two
            continue
    return None


def _grew_since(seq: int, *, head_seq: int) -> bool:
    # Events a checkpoint causes do not count (its own event, and the outbox's record of delivering its
    # copy to the witness): otherwise every checkpoint would call for another, for ever.
    return (
        AuditEvent.objects.filter(seq__gt=seq, seq__lte=head_seq)
        .exclude(action=AuditAction.AUDIT_CHECKPOINT)
        .exclude(action__in=[AuditAction.OUTBOX_DELIVERED, AuditAction.OUTBOX_FAILED], data__kind=WITNESS_KIND)
        .exists()
    )


def _record_break(*, broken_seq: int, reason: str, verified: int) -> AuditEvent | None:
    previous = latest_checkpoint()
    if previous is not None and previous.action == AuditAction.AUDIT_CHAIN_BROKEN and (
        previous.data.get("broken_seq"), previous.data.get("reason")) == (broken_seq, reason):
        return None  # already raised; one alarm per break, not one a minute
    logger.error("audit chain broken at event %s: %s", broken_seq, reason)
    return record(actor=SYSTEM, action=AuditAction.AUDIT_CHAIN_BROKEN,
                  data={"broken_seq": broken_seq, "reason": reason, "verified": verified})


def _append_line(path: Path, checkpoint: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(checkpoint.as_json()) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def audit_checkpoint(*, checkpoint_file: Path, key: str, witness_url: str = "") -> AuditEvent | None:
    """Verify the chain, sign its sequenced head outside the database, and record that; None when nothing changed.

    Writes a checkpoint only when events other than checkpoints were added since the last one in
    ``checkpoint_file``. A broken chain, or one that no longer matches the last checkpoint (cut short,
    or its last signed event rewritten), is recorded as ``audit.chain_broken`` — once per break — and
    is not checkpointed. With ``witness_url`` the checkpoint's copy for the witness is an outbox row
    in the same transaction as its ``audit.checkpoint`` event.

    Only the sequenced chain is signed. Events committed a moment ago are sequenced first, outside
    this function's transaction, so the chain head is not held during the verification. A run verifies
    the links added since the last checkpoint, and the whole chain at least hourly
    (``FULL_VERIFICATION_EVERY``); an idle run only checks the last signed head (one row).
    """
    if not key:
        raise ValueError("AUDIT_CHECKPOINT_KEY is not set; checkpoints cannot be signed")
    sequence_pending(wait=True)
    with transaction.atomic():
        return _checkpoint(checkpoint_file=Path(checkpoint_file), key=key, witness_url=witness_url)


def _verify_links_after(last: Checkpoint) -> ChainReport:
    """``chain_verify``'s check of only the links after a signed head that still matches the stored chain.

    What came before is vouched for by that head (any rewrite of it changes the head's hash), so a
    checkpoint costs as much as the chain grew, not as long as it is.
    """
    expected_seq, prev_hash, count = last.seq + 1, last.hash, last.seq
    links = (AuditEvent.objects.filter(seq__gt=last.seq).order_by("seq")
             .values(*HASHED_FIELDS, "prev_hash", "hash").iterator(chunk_size=_COMPARE_CHUNK))
    for link in links:
        seq = link["seq"]
        if seq != expected_seq:
            return ChainReport(False, count, expected_seq - 1, prev_hash, expected_seq,
                               f"event {expected_seq} is missing (next stored event is {seq})")
        if link["prev_hash"] != prev_hash:
            return ChainReport(False, count, seq - 1, prev_hash, seq,
                               f"event {seq} does not point at the hash of event {seq - 1}")
        if link_hash(prev_hash=prev_hash, fields=link) != link["hash"]:
            return ChainReport(False, count, seq - 1, prev_hash, seq,
                               f"event {seq} was changed after it was written (its hash does not match)")
        prev_hash, expected_seq, count = link["hash"], seq + 1, count + 1
    return ChainReport(True, count, expected_seq - 1, prev_hash)


def _fully_verified_since(moment) -> bool:
    return AuditEvent.objects.filter(
        action=AuditAction.AUDIT_CHECKPOINT, created_at__gte=moment, data__verified_from=0
    ).exists()


def _checkpoint(*, checkpoint_file: Path, key: str, witness_url: str) -> AuditEvent | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [_CHECKPOINT_LOCK_KEY])
    last = _last_checkpoint(checkpoint_file)
    head_seq, _ = chain_head()
    if last is not None:
        check = checkpoints_compare([last.as_json()], key=key, head_seq=head_seq, first_number=0,
                                    label=f"the last checkpoint in {checkpoint_file}")
        if check.mismatches:  # cut short, or rewritten up to the last signed head
            report = chain_verify()
            if not report.ok:  # name the first break, wherever it is
                return _record_break(broken_seq=report.broken_seq, reason=report.reason, verified=report.count)
            mismatch = check.mismatches[0]
            return _record_break(broken_seq=mismatch.seq, reason=mismatch.reason, verified=report.count)
        if not _grew_since(last.seq, head_seq=head_seq):
            return None  # idle: nothing to sign, nothing recorded
    elif head_seq == 0:  # nothing to sign yet
        return None
    full = last is None or not _fully_verified_since(timezone.now() - FULL_VERIFICATION_EVERY)
    report = chain_verify() if full else _verify_links_after(last)
    if not report.ok:
        return _record_break(broken_seq=report.broken_seq, reason=report.reason, verified=report.count)
    at = timezone.now().isoformat()
    checkpoint = Checkpoint(
        seq=report.head_seq, hash=report.head_hash, at=at, key_id=checkpoint_key_id(key),
        signature=checkpoint_signature(key=key, seq=report.head_seq, head_hash=report.head_hash, at=at),
    )
    _append_line(checkpoint_file, checkpoint)
    event = record(
        actor=SYSTEM,
        action=AuditAction.AUDIT_CHECKPOINT,
        data={"verified": report.count, "verified_from": 0 if full else last.seq, "head_seq": report.head_seq,
              "head_hash": report.head_hash, "at": at, "key_id": checkpoint.key_id, "witness": bool(witness_url)},
    )
    if witness_url:  # the outbox, above us, queues the witness copy in this transaction (events.py)
        checkpoint_signed.send(sender=Checkpoint, checkpoint=checkpoint, witness_url=witness_url, kind=WITNESS_KIND)
    return event


def configured() -> dict[str, Any]:
    """``audit_checkpoint``'s arguments from the settings."""
    return {"checkpoint_file": settings.AUDIT_CHECKPOINT_FILE, "key": settings.AUDIT_CHECKPOINT_KEY,
            "witness_url": settings.AUDIT_WITNESS_URL}


def checkpoint_now() -> AuditEvent | None:
    """Checkpoint with the configured settings now; `make run` calls it once its processes have exited.

    A database that is already gone is logged, not raised: stopping must finish either way.
    """
    try:
        return audit_checkpoint(**configured())
    except (DatabaseError, OSError, ValueError) as exc:
        logger.error("audit checkpoint failed: %s", exc)
        return None
