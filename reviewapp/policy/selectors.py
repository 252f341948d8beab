"""Reads of the documented policy: the version in force, its history, and what changed between versions.

A version is in force from its ``effective_from`` date until a later-numbered version takes effect
(``effective_from`` never decreases from one version to the next; the loader refuses that).
"""

from __future__ import annotations

import datetime
import difflib
import re
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from .dsa import dsa_category_label
from .enforcement import Action
from .models import Clause, Policy, PolicyVersion

DEFAULT_POLICY = "usage-policy"


def _today(on: datetime.date | None) -> datetime.date:
    return on or timezone.localdate()


def _with_clauses(versions: QuerySet[PolicyVersion]) -> QuerySet[PolicyVersion]:
    return versions.select_related("policy").prefetch_related(
        Prefetch("clauses", queryset=Clause.objects.order_by("position")))


def _in_force(on: datetime.date | None) -> QuerySet[PolicyVersion]:
    # DISTINCT ON: the highest-numbered version of each policy that has taken effect.
    return (PolicyVersion.objects.filter(effective_from__lte=_today(on))
            .order_by("policy_id", "-number").distinct("policy_id"))


def versions_in_force(*, on: datetime.date | None = None) -> list[PolicyVersion]:
    """The version in force of every policy, with its clauses, ordered by policy title."""
    return sorted(_with_clauses(_in_force(on)), key=lambda version: (version.policy.title, version.policy.slug))


def version_in_force(policy_slug: str = DEFAULT_POLICY, *, on: datetime.date | None = None) -> PolicyVersion | None:
    """The version of ``policy_slug`` in force on ``on`` (default today), or None if none has taken effect."""
    return (_with_clauses(PolicyVersion.objects.filter(policy__slug=policy_slug, effective_from__lte=_today(on)))
            .order_by("-number").first())


def clauses_in_force(*, on: datetime.date | None = None) -> QuerySet[Clause]:
    """Every clause a decision may cite today: those of each policy's version in force."""
    return (Clause.objects.filter(version__in=_in_force(on).values("pk"))
            .select_related("version__policy").order_by("version__policy__slug", "position"))


def versions_upcoming(*, on: datetime.date | None = None) -> list[PolicyVersion]:
    """Versions published ahead of their date: they take effect later."""
    return list(PolicyVersion.objects.filter(effective_from__gt=_today(on)).select_related("policy")
                .order_by("policy__slug", "number"))


def version_latest(policy_slug: str) -> PolicyVersion | None:
    """The last published version, in force or not: what the next load compares its file with."""
    return PolicyVersion.objects.filter(policy__slug=policy_slug).order_by("-number").first()


def version_history(policy_slug: str) -> QuerySet[PolicyVersion]:
    """Every version of a policy, newest first, with its number of clauses."""
    return (PolicyVersion.objects.filter(policy__slug=policy_slug).select_related("policy")
            .annotate(clause_count=Count("clauses")).order_by("-number"))


def policy_get(slug: str) -> Policy:
    """Raises ``Policy.DoesNotExist``."""
    return Policy.objects.get(slug=slug)


def version_get(policy_slug: str, number: int) -> PolicyVersion:
    """One version with its clauses. Raises ``PolicyVersion.DoesNotExist``."""
    return _with_clauses(PolicyVersion.objects.filter(policy__slug=policy_slug)).get(number=number)


# --- Differences between two versions --------------------------------------------------------------

_TOKEN_RE = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class Segment:
    """A run of text that is in both versions (equal), only in the newer (insert) or only in the older (delete)."""

    kind: str
    text: str


@dataclass(frozen=True)
class FieldChange:
    name: str
    label: str
    old: str
    new: str
    segments: tuple[Segment, ...] = ()  # word-level differences, for the long text fields


@dataclass(frozen=True)
class ClauseChange:
    ref: str
    kind: str  # added | removed | changed | unchanged
    old: Clause | None
    new: Clause | None
    fields: tuple[FieldChange, ...] = ()

    @property
    def clause(self) -> Clause:
        return self.new or self.old


@dataclass(frozen=True)
class VersionDiff:
    old: PolicyVersion
    new: PolicyVersion
    header: tuple[FieldChange, ...]
    clauses: tuple[ClauseChange, ...]
    document: tuple[str, ...] = field(repr=False)  # unified diff of the whole Markdown files

    def refs(self, kind: str) -> list[str]:
        return [change.ref for change in self.clauses if change.kind == kind]

    @property
    def added(self) -> list[str]:
        return self.refs("added")

    @property
    def removed(self) -> list[str]:
        return self.refs("removed")

    @property
    def changed(self) -> list[str]:
        return self.refs("changed")

    @property
    def unchanged(self) -> list[str]:
        return self.refs("unchanged")

    @property
    def document_text(self) -> str:
        return "\n".join(self.document)


def text_segments(old: str, new: str) -> tuple[Segment, ...]:
    """Word-level differences between two texts, for marking up insertions and deletions."""
    a, b = _TOKEN_RE.findall(old), _TOKEN_RE.findall(new)
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            segments.append(Segment("equal", "".join(a[i1:i2])))
            continue
        if tag in ("delete", "replace"):
            segments.append(Segment("delete", "".join(a[i1:i2])))
        if tag in ("insert", "replace"):
            segments.append(Segment("insert", "".join(b[j1:j2])))
    return tuple(segments)


def _actions(values: list[str]) -> str:
    return ", ".join(Action(value).label for value in values)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


# (field, label, how to show it, compared word by word)
_CLAUSE_FIELDS = (
    ("title", "Title", str, True),
    ("text", "Text", str, True),
    ("severity", "Severity", str, False),
    ("permitted_actions", "Permitted actions", _actions, False),
    ("evidence_required", "Evidence required", str, True),
    ("requires_second_approval", "Second approval", _yes_no, False),
    ("evidence_retention_days", "Evidence kept (days)", str, False),
    ("appeal_window_days", "Appeal window (days)", str, False),
    ("dsa_category", "DSA category", dsa_category_label, False),
)
_HEADER_FIELDS = (
    ("title", "Title", str, True),
    ("summary", "Summary", str, True),
    ("effective_from", "Effective from", str, False),
)


def _field_changes(old, new, fields) -> tuple[FieldChange, ...]:
    changes = []
    for name, label, show, wordwise in fields:
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        before_shown, after_shown = show(before), show(after)
        segments = text_segments(before_shown, after_shown) if wordwise else ()
        changes.append(FieldChange(name, label, before_shown, after_shown, segments))
    return tuple(changes)


def version_diff(old: PolicyVersion, new: PolicyVersion) -> VersionDiff:
    """What changed from ``old`` to ``new``: clause by clause (matched by reference), the front matter,
    and the whole document as a unified diff. Clauses come in the newer version's order, removed ones last.
    """
    old_clauses = {clause.ref: clause for clause in old.clauses.all()}
    new_clauses = {clause.ref: clause for clause in new.clauses.all()}
    changes: list[ClauseChange] = []
    for ref, clause in new_clauses.items():
        before = old_clauses.get(ref)
        if before is None:
            changes.append(ClauseChange(ref, "added", None, clause))
            continue
        fields = _field_changes(before, clause, _CLAUSE_FIELDS)
        changes.append(ClauseChange(ref, "changed" if fields else "unchanged", before, clause, fields))
    changes.extend(ClauseChange(ref, "removed", clause, None) for ref, clause in old_clauses.items()
                   if ref not in new_clauses)
    document = tuple(difflib.unified_diff(
        old.text.splitlines(), new.text.splitlines(),
        fromfile=f"{old.policy.slug} v{old.number}", tofile=f"{new.policy.slug} v{new.number}", lineterm=""))
    return VersionDiff(old, new, _field_changes(old, new, _HEADER_FIELDS), tuple(changes), document)
