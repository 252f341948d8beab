"""`manage.py ingest_flags FILE.jsonl`: the backfill path, through the same service as the API."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from flags.models import Flag, FlagBatch
from flags.services import detector_ensure, detector_set_active
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM

pytestmark = pytest.mark.django_db


def flag(external_id: str, detector: str = "tpl-watch", **fields) -> dict:
    return {
        "external_id": external_id,
        "detector": detector,
        "detector_version": "1.4.0",
        "account_id": "acct_000042",
        "signal": "templated_prompts",
        "score": 0.91,
        "observed_from": "2025-03-01T10:00:00Z",
        "observed_to": "2025-03-01T11:00:00Z",
        "evidence": {"excerpts": ["Think step by step: item 1", "Think step by step: item 2"]},
        **fields,
    }


def write_jsonl(path: Path, lines: list[dict | str | bytes]) -> Path:
    with open(path, "wb") as out:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            out.write((line.encode() if isinstance(line, str) else line) + b"\n")
    return path


def ingest(path: Path, *args: str) -> dict[str, int]:
    """Run the command; return the counts it printed."""
    out = StringIO()
    call_command("ingest_flags", str(path), *args, stdout=out)
    counts = dict(re.findall(r"^(created|duplicates|conflicts|rejected): (\d+)", out.getvalue(), re.MULTILINE))
    assert set(counts) == {"created", "duplicates", "conflicts", "rejected"}, out.getvalue()
    return {name: int(value) for name, value in counts.items()}


def rejected_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def detectors():
    return {slug: detector_ensure(actor=SYSTEM, slug=slug) for slug in ("tpl-watch", "vol-watch")}


def test_counts_line_numbers_and_the_rejected_file(detectors, tmp_path):
    source = write_jsonl(tmp_path / "flags.jsonl", [
        flag("f-1"),
        "",                                     # line 2: blank, skipped
        flag("f-2", score=1.5),                 # line 3: out of range
        "{not json",                            # line 4
        flag("f-3", surprise=True),             # line 5: unknown field
        flag("f-4"),
    ])

    assert ingest(source) == {"created": 2, "duplicates": 0, "conflicts": 0, "rejected": 3}

    assert set(Flag.objects.values_list("external_id", flat=True)) == {"f-1", "f-4"}
    stored = Flag.objects.get(external_id="f-1")
    assert (stored.account_external_id, stored.score, stored.evidence) == (
        "acct_000042", 0.91, {"excerpts": ["Think step by step: item 1", "Think step by step: item 2"]})
    assert stored.observed_to.isoformat() == "2025-03-01T11:00:00+00:00"
    rejected = rejected_lines(tmp_path / "flags.rejected.jsonl")
    assert [r["line"] for r in rejected] == [3, 4, 5]
    assert [r["external_id"] for r in rejected] == ["f-2", None, "f-3"]
    assert list(rejected[0]["errors"]) == ["score"]
    assert "malformed" in rejected[1]["errors"]["non_field_errors"][0]
    assert rejected[1]["text"] == "{not json"
    assert rejected[2]["errors"] == {"surprise": ["unknown field (schema v1 allows only the documented fields)"]}
    assert json.loads(rejected[2]["text"]) == flag("f-3", surprise=True)


def test_a_replay_of_the_same_file_creates_nothing(detectors, tmp_path):
    source = write_jsonl(tmp_path / "flags.jsonl", [flag(f"f-{i}") for i in range(7)])
    assert ingest(source)["created"] == 7

    assert ingest(source) == {"created": 0, "duplicates": 7, "conflicts": 0, "rejected": 0}
    assert Flag.objects.count() == 7

    grown = write_jsonl(tmp_path / "grown.jsonl", [flag(f"f-{i}") for i in range(8)])
    assert ingest(grown) == {"created": 1, "duplicates": 7, "conflicts": 0, "rejected": 0}


def test_same_id_different_content_is_a_conflict_and_the_stored_flag_is_kept(detectors, tmp_path):
    ingest(write_jsonl(tmp_path / "first.jsonl", [flag("f-1", score=0.5)]))
    out = StringIO()
    call_command("ingest_flags", str(write_jsonl(tmp_path / "second.jsonl", [flag("f-1", score=0.9)])), stdout=out)

    assert "conflicts: 1" in out.getvalue()
    assert "line 1 (f-1): same external_id as a flag stored earlier" in out.getvalue()
    assert Flag.objects.get(external_id="f-1").score == 0.5


def test_chunks_keep_line_numbers_and_each_chunk_is_one_audited_batch(detectors, tmp_path):
    source = write_jsonl(tmp_path / "flags.jsonl", [
        flag("f-1"), flag("f-2"), flag("f-3"), flag("f-4", signal="nope"), flag("f-1", score=0.1),
    ])

    assert ingest(source, "--chunk", "2") == {"created": 3, "duplicates": 1, "conflicts": 1, "rejected": 1}

    assert [r["line"] for r in rejected_lines(tmp_path / "flags.rejected.jsonl")] == [4]
    assert Flag.objects.get(external_id="f-1").score == 0.91  # the earlier line wins
    batches = FlagBatch.objects.order_by("pk")  # lines 1–2, 3–4, 5
    assert [(b.source, b.created, b.duplicates, b.conflicts, b.rejected) for b in batches] == [
        ("file", 2, 0, 0, 0), ("file", 1, 0, 0, 1), ("file", 0, 1, 1, 0)]
    events = AuditEvent.objects.filter(action=AuditAction.FLAGS_INGESTED).order_by("id")
    assert [e.data["created"] for e in events] == [2, 1, 0]
    assert {(e.actor_type, e.actor_id, e.actor_display) for e in events} == {
        ("system", "manage.py ingest_flags", f"ingest_flags {source}")}


def test_with_detector_lines_naming_another_detector_are_rejected(detectors, tmp_path):
    source = write_jsonl(tmp_path / "flags.jsonl", [flag("f-1"), flag("v-1", detector="vol-watch"), flag("f-2")])

    assert ingest(source, "--detector", "tpl-watch") == {
        "created": 2, "duplicates": 0, "conflicts": 0, "rejected": 1}

    (rejected,) = rejected_lines(tmp_path / "flags.rejected.jsonl")
    assert rejected["line"] == 2
    assert rejected["errors"] == {"detector": ["'vol-watch' does not match this token's detector 'tpl-watch'"]}
    assert not Flag.objects.filter(detector=detectors["vol-watch"]).exists()


def test_without_detector_each_line_names_its_own_active_detector(detectors, tmp_path):
    detector_set_active(actor=SYSTEM, detector=detector_ensure(actor=SYSTEM, slug="retired"), active=False)
    source = write_jsonl(tmp_path / "flags.jsonl", [
        flag("f-1"), flag("v-1", detector="vol-watch"), flag("x-1", detector="ghost"), flag("r-1", detector="retired"),
    ])

    assert ingest(source) == {"created": 2, "duplicates": 0, "conflicts": 0, "rejected": 2}

    stored = set(Flag.objects.values_list("detector__slug", "external_id"))
    assert stored == {("tpl-watch", "f-1"), ("vol-watch", "v-1")}
    assert [r["errors"] for r in rejected_lines(tmp_path / "flags.rejected.jsonl")] == [
        {"detector": ["no active detector 'ghost'"]}, {"detector": ["no active detector 'retired'"]}]


def test_an_unknown_or_inactive_detector_option_stops_before_reading(detectors, tmp_path):
    source = write_jsonl(tmp_path / "flags.jsonl", [flag("f-1")])
    with pytest.raises(CommandError, match="no detector 'ghost'"):
        call_command("ingest_flags", str(source), "--detector", "ghost", stdout=StringIO())
    detector_set_active(actor=SYSTEM, detector=detectors["vol-watch"], active=False)
    with pytest.raises(CommandError, match="inactive"):
        call_command("ingest_flags", str(source), "--detector", "vol-watch", stdout=StringIO())
    assert not Flag.objects.exists()


def test_bad_json_and_non_utf8_lines_are_rejections_not_crashes(detectors, tmp_path):
    source = write_jsonl(tmp_path / "flags.jsonl", [
        b"\xff\xfe garbage",
        flag("f-1"),
        b'{"external_id": "f-\xe9"}',            # Latin-1, not UTF-8
        "[1, 2, 3]",
        '{"flags": []}',
    ])

    assert ingest(source)["rejected"] == 4

    rejected = rejected_lines(tmp_path / "flags.rejected.jsonl")
    assert [r["line"] for r in rejected] == [1, 3, 4, 5]
    assert rejected[0]["errors"] == {"non_field_errors": ["the line is not valid UTF-8 (byte 0)"]}
    assert rejected[1]["errors"] == {"non_field_errors": ["the line is not valid UTF-8 (byte 19)"]}
    assert rejected[1]["text"] == '{"external_id": "f-\ufffd"}'
    assert all(r["errors"] for r in rejected)
    assert Flag.objects.count() == 1


def test_no_rejections_no_rejected_file_and_rejected_goes_where_asked(detectors, tmp_path):
    clean = write_jsonl(tmp_path / "clean.jsonl", [flag("f-1")])
    ingest(clean)
    assert not (tmp_path / "clean.rejected.jsonl").exists()

    bad = write_jsonl(tmp_path / "bad.jsonl", ["nope"])
    elsewhere = tmp_path / "out" / "why.jsonl"
    elsewhere.parent.mkdir()
    ingest(bad, "--rejected", str(elsewhere))
    assert [r["line"] for r in rejected_lines(elsewhere)] == [1]
    assert not (tmp_path / "bad.rejected.jsonl").exists()


def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("ingest_flags", str(tmp_path / "absent.jsonl"), stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_chunks_stored_in_parallel_answer_as_one_after_another(detectors, tmp_path, monkeypatch):
    """Two connections at once (--jobs 2, the default): same counts, same rejected file, the earlier line wins."""
    import uuid

    from flags import tasks
    from flags.tasks import group_pending_flags

    # A dedupe key of this test's own: a session worker an earlier test started may be grouping these flags and
    # noting a queued task under the shared key (which would rightly keep this process from queueing another).
    monkeypatch.setattr(tasks, "QUEUED_KEY", f"{tasks.QUEUED_KEY}.{uuid.uuid4().hex}")
    enqueued = []
    monkeypatch.setattr(group_pending_flags, "delay", lambda *args: enqueued.append(args))
    lines: list = []
    for i in range(60):
        if i % 10 == 9:
            lines.append(flag(f"f-{i - 4}", score=0.25))  # an id from a few lines (one or two chunks) earlier
        elif i % 20 == 7:
            lines.append("{broken")
        else:
            lines.append(flag(f"f-{i}", score=0.75))
    source = write_jsonl(tmp_path / "flags.jsonl", lines)
    bad = [i + 1 for i, line in enumerate(lines) if line == "{broken"]

    counts = ingest(source, "--chunk", "3", "--jobs", "2")

    assert counts == {"created": 60 - 6 - len(bad), "duplicates": 6, "conflicts": 6, "rejected": len(bad)}
    assert set(Flag.objects.values_list("score", flat=True)) == {0.75}
    assert [r["line"] for r in rejected_lines(tmp_path / "flags.rejected.jsonl")] == bad
    # Grouping is requested after each commit, but at most one task waits in the queue at a time.
    assert 1 <= len(enqueued) <= FlagBatch.objects.filter(created__gt=0).count()
    assert ingest(source, "--jobs", "2", "--chunk", "7") == {
        "created": 0, "duplicates": 60 - len(bad), "conflicts": 6, "rejected": len(bad)}
