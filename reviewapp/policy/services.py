"""Writes of the documented policy: publishing a new version when a policy file changed.

DESIGN.md invariant 4: a published version never changes (database triggers refuse UPDATE and DELETE
of versions and clauses); a changed text is a new version with all its clauses, so decisions keep
pointing at the text they were decided under.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Actor, record

from .loader import LoadProblem, PolicyDocument, PolicyLoadError, read_policy_directory
from .models import Clause, Policy, PolicyVersion
from .selectors import version_diff, version_latest

# Any constant works; it only has to be the same in every process ("policyld" as a bigint).
_LOAD_LOCK_KEY = int.from_bytes(b"policyld", "big")


@dataclass(frozen=True)
class LoadResult:
    """What loading one policy file did: published a new version, or nothing (same text as the latest)."""

    slug: str
    source_path: str
    version: PolicyVersion
    published: bool

    def __str__(self) -> str:
        if self.published:
            return f"{self.slug}: published v{self.version.number}"
        return f"{self.slug}: unchanged (v{self.version.number})"


@transaction.atomic
def policies_load(*, directory: Path | str, actor: Actor) -> list[LoadResult]:
    """Load every policy file of ``directory``: publish a new version of each policy whose file changed.

    A file with the same SHA-256 as its policy's latest version is a no-op. A changed file becomes version
    number + 1 with all its clauses and a ``policy.version_published`` audit event, in this one
    transaction. If any file is wrong (``PolicyLoadError``, naming file, line, clause and problem),
    nothing at all is written. Concurrent loads are serialised by a transaction-scoped advisory lock.
    """
    documents = read_policy_directory(directory)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [_LOAD_LOCK_KEY])
    latest = {document.slug: version_latest(document.slug) for document in documents}
    changed = {document.slug for document in documents
               if latest[document.slug] is None or latest[document.slug].source_sha256 != document.sha256}
    problems = [problem for document in documents if document.slug in changed
                for problem in _history_problems(document, latest[document.slug])]
    if problems:
        raise PolicyLoadError(problems)
    results = []
    for document in documents:
        if document.slug in changed:
            version = _publish(document, previous=latest[document.slug], actor=actor)
            results.append(LoadResult(document.slug, document.display_path, version, published=True))
        else:
            results.append(LoadResult(document.slug, document.display_path, latest[document.slug], published=False))
    return results


def _normalised(title: str) -> str:
    return " ".join(title.casefold().split())


def _history_problems(document: PolicyDocument, previous: PolicyVersion | None) -> list[LoadProblem]:
    """Checks against what was published before: dates only move forward, references keep their meaning."""
    problems = []
    if previous is not None and document.effective_from < previous.effective_from:
        problems.append(LoadProblem(document.display_path, (
            f"effective_from {document.effective_from} is earlier than {previous.effective_from}, the date of "
            f"v{previous.number}: a new version cannot take effect before the one it replaces"), line=1))
    mine: dict[str, dict] = {}    # reference -> its latest row in this policy
    others: dict[str, dict] = {}  # reference -> a row of another policy
    for row in (Clause.objects.filter(ref__in=[clause.ref for clause in document.clauses])
                .values("ref", "title", "version__number", "version__policy__slug").order_by("-version__number")):
        (mine if row["version__policy__slug"] == document.slug else others).setdefault(row["ref"], row)
    for clause in document.clauses:
        if clause.ref in others:
            row = others[clause.ref]
            problems.append(LoadProblem(document.display_path, (
                f"{clause.ref} is already a clause of policy {row['version__policy__slug']} "
                f"(v{row['version__number']}); a reference belongs to one policy"), ref=clause.ref, line=clause.line))
        elif clause.ref in mine and _normalised(mine[clause.ref]["title"]) != _normalised(clause.title):
            row = mine[clause.ref]
            problems.append(LoadProblem(document.display_path, (
                f'the reference changed its meaning: {clause.ref} was published as "{row["title"]}" '
                f'(v{row["version__number"]}), now "{clause.title}"; keep the title, or give the new clause '
                "a new reference"), ref=clause.ref, line=clause.line))
    return problems


def _publish(document: PolicyDocument, *, previous: PolicyVersion | None, actor: Actor) -> PolicyVersion:
    policy, _ = Policy.objects.get_or_create(slug=document.slug, defaults={"title": document.title})
    if policy.title != document.title:
        Policy.objects.filter(pk=policy.pk).update(title=document.title)
    version = PolicyVersion.objects.create(
        policy=policy, number=previous.number + 1 if previous else 1, source_path=document.display_path,
        source_sha256=document.sha256, title=document.title, summary=document.summary,
        effective_from=document.effective_from, text=document.text,
    )
    Clause.objects.bulk_create([Clause(version=version, **clause.model_fields()) for clause in document.clauses])
    refs = [clause.ref for clause in document.clauses]
    if previous is None:
        added, removed, changed = refs, [], []
    else:
        diff = version_diff(previous, version)
        added, removed, changed = diff.added, diff.removed, diff.changed
    record(actor=actor, action=AuditAction.POLICY_VERSION_PUBLISHED, target=version, data={
        "policy": document.slug, "number": version.number, "title": document.title,
        "effective_from": document.effective_from, "source_path": document.display_path,
        "source_sha256": document.sha256, "previous": previous.number if previous else None,
        "clauses": refs, "added": added, "removed": removed, "changed": changed,
    })
    return version
