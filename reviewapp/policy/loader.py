"""Reading policies/*.md: Markdown with YAML front matter, one clause per reference heading.

Pure parsing and validation, no database: ``read_policy_directory`` returns one ``PolicyDocument`` per
file or raises ``PolicyLoadError`` listing every problem found, each naming the file, the line, the
clause and what is wrong. ``services.policies_load`` adds the checks that need the published history.
The format is described in policies/README.md.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from .dsa import DSA_CATEGORIES, RENAMED_DSA_CATEGORIES
from .enforcement import SEVERITY_ORDER, Action
from .models import Clause, Policy, PolicyVersion

# A clause reference: capital letters, a hyphen, then numbers separated by dots (UP-4.2).
REF_RE = re.compile(r"^[A-Z][A-Z0-9]{0,7}-\d+(?:\.\d+)*$")
# Something meant as a reference but malformed (up-4.2, UP-4.2., UP-4,2): refused rather than read as prose.
_REF_LIKE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,7}-\S*\d")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_FRONT_MATTER_DELIMITER = "---"
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")
_SLUG_RE = re.compile(r"^[-a-z0-9_]+$")

# DSA Art. 20(1): the internal complaint system must be open for at least six months after a decision.
MIN_APPEAL_WINDOW_DAYS = 180
DEFAULT_APPEAL_WINDOW_DAYS: int = Clause._meta.get_field("appeal_window_days").default

FRONT_MATTER_KEYS = {"slug", "title", "effective_from", "summary"}
REQUIRED_FRONT_MATTER_KEYS = {"slug", "title", "effective_from"}
CLAUSE_ATTRIBUTES = (
    "severity", "permitted_actions", "evidence_required", "requires_second_approval",
    "evidence_retention_days", "appeal_window_days", "dsa_category",
)
OPTIONAL_CLAUSE_ATTRIBUTES = {"appeal_window_days"}
_MAX_LENGTHS = {
    "slug": Policy._meta.get_field("slug").max_length,
    "title": PolicyVersion._meta.get_field("title").max_length,
    "ref": Clause._meta.get_field("ref").max_length,
    "clause_title": Clause._meta.get_field("title").max_length,
}


@dataclass(frozen=True)
class LoadProblem:
    """One thing wrong with a policy file."""

    file: str
    problem: str
    ref: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        clause = f", clause {self.ref}" if self.ref else ""
        return f"{where}{clause}: {self.problem}"


class PolicyLoadError(Exception):
    """Policy files that cannot be loaded. Nothing is written while any of them is wrong."""

    def __init__(self, problems: list[LoadProblem]):
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(frozen=True)
class ClauseSource:
    """One clause as written in a policy file; the fields are those of ``Clause``."""

    ref: str
    title: str
    text: str
    severity: str
    permitted_actions: tuple[str, ...]
    evidence_required: str
    requires_second_approval: bool
    evidence_retention_days: int
    appeal_window_days: int
    dsa_category: str
    position: int
    line: int = field(compare=False)

    def model_fields(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "position": self.position, "title": self.title, "text": self.text,
            "severity": self.severity, "permitted_actions": list(self.permitted_actions),
            "evidence_required": self.evidence_required, "requires_second_approval": self.requires_second_approval,
            "evidence_retention_days": self.evidence_retention_days, "appeal_window_days": self.appeal_window_days,
            "dsa_category": self.dsa_category,
        }


@dataclass(frozen=True)
class PolicyDocument:
    """One policy file, parsed and valid on its own."""

    path: Path
    display_path: str
    slug: str
    title: str
    summary: str
    effective_from: datetime.date
    text: str
    sha256: str
    clauses: tuple[ClauseSource, ...]


def display_path(path: Path) -> str:
    """The path as people know it: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return str(path)


def policy_files(directory: Path) -> list[Path]:
    """Every policy file of a directory: its ``*.md`` files except the README."""
    return sorted(p for p in directory.glob("*.md") if p.is_file() and p.name.lower() != "readme.md")


def read_policy_directory(directory: Path | str) -> list[PolicyDocument]:
    """Parse and validate every policy file of ``directory``, or raise listing every problem of every file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyLoadError([LoadProblem(display_path(directory), "no such directory")])
    paths = policy_files(directory)
    if not paths:
        raise PolicyLoadError([LoadProblem(display_path(directory), "no policy files (*.md other than README.md)")])
    documents: list[PolicyDocument] = []
    problems: list[LoadProblem] = []
    for path in paths:
        try:
            documents.append(parse_policy_file(path))
        except PolicyLoadError as exc:
            problems.extend(exc.problems)
    problems.extend(_cross_file_problems(documents))
    if problems:
        raise PolicyLoadError(problems)
    return documents


def _cross_file_problems(documents: list[PolicyDocument]) -> list[LoadProblem]:
    problems = []
    slugs: dict[str, PolicyDocument] = {}
    refs: dict[str, PolicyDocument] = {}
    for document in documents:
        if document.slug in slugs:
            problems.append(LoadProblem(document.display_path, (
                f'slug "{document.slug}" is already the slug of {slugs[document.slug].display_path}'), line=2))
        slugs.setdefault(document.slug, document)
        for clause in document.clauses:
            if clause.ref in refs:
                problems.append(LoadProblem(document.display_path, (
                    f"duplicate reference: {clause.ref} is already a clause of {refs[clause.ref].display_path}"),
                    ref=clause.ref, line=clause.line))
            refs.setdefault(clause.ref, document)
    return problems


def parse_policy_file(path: Path) -> PolicyDocument:
    """Parse one policy file, or raise ``PolicyLoadError`` with every problem it has."""
    shown = display_path(path)
    raw = path.read_bytes()
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyLoadError([LoadProblem(shown, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from exc
    parser = _FileParser(shown, source)
    document = parser.parse(path=path, sha256=hashlib.sha256(raw).hexdigest())
    if parser.problems:
        raise PolicyLoadError(parser.problems)
    return document


class _FileParser:
    def __init__(self, shown: str, source: str):
        self.shown = shown
        self.lines = source.replace("\r\n", "\n").split("\n")
        self.problems: list[LoadProblem] = []

    def problem(self, problem: str, *, ref: str = "", line: int | None = None) -> None:
        self.problems.append(LoadProblem(self.shown, problem, ref=ref, line=line))

    # --- the document -------------------------------------------------------------------------------

    def parse(self, *, path: Path, sha256: str) -> PolicyDocument | None:
        front, body_start = self._front_matter()
        clauses = self._clauses(body_start) if body_start is not None else []
        if body_start is not None and not clauses and not self.problems:
            self.problem("no clauses: a clause is a heading like '### UP-1.1 Title' followed by a ```yaml block")
        if self.problems:
            return None
        return PolicyDocument(
            path=path, display_path=self.shown, slug=front["slug"], title=front["title"],
            summary=front["summary"], effective_from=front["effective_from"], text="\n".join(self.lines),
            sha256=sha256, clauses=tuple(clauses),
        )

    def _front_matter(self) -> tuple[dict[str, Any], int | None]:
        if not self.lines or self.lines[0].strip() != _FRONT_MATTER_DELIMITER:
            self.problem("no front matter: the file must start with a line '---', then slug, title, "
                         "effective_from and summary, then '---'", line=1)
            return {}, None
        try:
            end = next(i for i in range(1, len(self.lines)) if self.lines[i].strip() == _FRONT_MATTER_DELIMITER)
        except StopIteration:
            self.problem("front matter is not closed by a line '---'", line=1)
            return {}, None
        data = self._yaml("\n".join(self.lines[1:end]), first_line=2, what="front matter")
        if data is None:
            return {}, end + 1
        front: dict[str, Any] = {}
        for key in sorted(set(data) - FRONT_MATTER_KEYS, key=str):
            self.problem(f'unknown front matter key "{key}" (known: {", ".join(sorted(FRONT_MATTER_KEYS))})', line=1)
        for key in sorted(REQUIRED_FRONT_MATTER_KEYS - set(data)):
            self.problem(f"missing front matter key {key}", line=1)
        slug = data.get("slug")
        if "slug" in data:
            if not isinstance(slug, str) or not _SLUG_RE.match(slug) or len(slug) > _MAX_LENGTHS["slug"]:
                self.problem(f"slug {slug!r} must be lower-case letters, digits, hyphens and underscores "
                             f"(at most {_MAX_LENGTHS['slug']})", line=1)
            front["slug"] = slug
        title = data.get("title")
        if "title" in data:
            if not isinstance(title, str) or not title.strip() or len(title) > _MAX_LENGTHS["title"]:
                self.problem(f"title must be text of 1 to {_MAX_LENGTHS['title']} characters", line=1)
            front["title"] = str(title).strip()
        if "effective_from" in data:
            front["effective_from"] = self._date(data["effective_from"])
        summary = data.get("summary", "")
        if not isinstance(summary, str):
            self.problem("summary must be text", line=1)
        front["summary"] = " ".join(str(summary or "").split())
        return front, end + 1

    def _date(self, value: Any) -> datetime.date | None:
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value
        try:
            return datetime.date.fromisoformat(str(value))
        except ValueError:
            self.problem(f"effective_from {value!r} is not a date (YYYY-MM-DD)", line=1)
            return None

    def _yaml(self, text: str, *, first_line: int, what: str, ref: str = "") -> dict | None:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = first_line + mark.line if mark is not None else first_line
            reason = getattr(exc, "problem", None) or str(exc)
            self.problem(f"{what} is not valid YAML: {reason}", ref=ref, line=line)
            return None
        if not isinstance(data, dict):
            self.problem(f"{what} must be a YAML mapping of names to values", ref=ref, line=first_line)
            return None
        return data

    # --- clauses --------------------------------------------------------------------------------------

    def _headings(self, start: int) -> list[tuple[int, int, str]]:
        """(index, level, text) of every heading from ``start``, skipping fenced code blocks."""
        headings = []
        fence: str | None = None
        for index in range(start, len(self.lines)):
            line = self.lines[index]
            opening = _FENCE_RE.match(line)
            if fence is not None:
                if _closes(line, fence):
                    fence = None
                continue
            if opening:
                fence = opening.group(1)
                continue
            heading = _HEADING_RE.match(line)
            if heading:
                headings.append((index, len(heading.group(1)), heading.group(2)))
        return headings

    def _clauses(self, start: int) -> list[ClauseSource]:
        headings = self._headings(start)
        clauses: list[ClauseSource] = []
        seen: dict[str, int] = {}
        for number, (index, level, text) in enumerate(headings):
            if level not in (2, 3):
                continue
            ref, _, title = text.partition(" ")
            end = next((i for i, lvl, _ in headings[number + 1:] if lvl <= 3), len(self.lines))
            has_block = self._attribute_block_start(index + 1, end) is not None
            if not REF_RE.match(ref):
                if _REF_LIKE_RE.match(ref) or has_block:
                    self.problem(f'heading "{text}" does not start with a clause reference like UP-4.2 '
                                 "(capital letters, a hyphen, numbers separated by dots)", line=index + 1)
                continue
            line = index + 1
            if len(ref) > _MAX_LENGTHS["ref"]:
                self.problem(f"reference longer than {_MAX_LENGTHS['ref']} characters", ref=ref, line=line)
            if ref in seen:
                self.problem(f"duplicate reference: {ref} is already the clause at line {seen[ref]}",
                             ref=ref, line=line)
                continue
            seen[ref] = line
            clause = self._clause(ref=ref, title=" ".join(title.split()), index=index, end=end, position=len(seen))
            if clause is not None:
                clauses.append(clause)
        return clauses

    def _attribute_block_start(self, index: int, end: int) -> int | None:
        while index < end and not self.lines[index].strip():
            index += 1
        if index < end:
            opening = _FENCE_RE.match(self.lines[index])
            if opening and opening.group(2).lower() in {"yaml", "yml"}:
                return index
        return None

    def _clause(self, *, ref: str, title: str, index: int, end: int, position: int) -> ClauseSource | None:
        line = index + 1
        problems_before = len(self.problems)
        if not title:
            self.problem("missing title after the reference in the heading", ref=ref, line=line)
        elif len(title) > _MAX_LENGTHS["clause_title"]:
            self.problem(f"title longer than {_MAX_LENGTHS['clause_title']} characters", ref=ref, line=line)
        block = self._attribute_block_start(index + 1, end)
        if block is None:
            self.problem("missing attribute block: a ```yaml fenced block must follow the heading", ref=ref, line=line)
            return None
        fence = _FENCE_RE.match(self.lines[block]).group(1)
        close = next((i for i in range(block + 1, end) if _closes(self.lines[i], fence)), None)
        if close is None:
            self.problem("the attribute block is not closed", ref=ref, line=block + 1)
            return None
        data = self._yaml("\n".join(self.lines[block + 1:close]), first_line=block + 2, what="the attribute block",
                          ref=ref)
        attributes = self._attributes(data, ref=ref, block=(block, close)) if data is not None else None
        text = _plain_text(self.lines[close + 1:end])
        if not text:
            self.problem("missing clause text after the attribute block", ref=ref, line=close + 1)
        if attributes is None or len(self.problems) > problems_before:
            return None
        return ClauseSource(ref=ref, title=title, text=text, position=position, line=line, **attributes)

    def _attributes(self, data: dict, *, ref: str, block: tuple[int, int]) -> dict[str, Any] | None:
        """Validate a clause's attributes; each problem names the line of its attribute (else of the block)."""
        problems_before = len(self.problems)

        def bad(problem: str, key: str = "") -> None:
            line = next((i + 1 for i in range(*block) if key and re.match(rf"{re.escape(key)}\s*:", self.lines[i])),
                        block[0] + 1)
            self.problem(problem, ref=ref, line=line)

        for key in sorted(set(data) - set(CLAUSE_ATTRIBUTES), key=str):
            bad(f'unknown attribute "{key}" (known: {", ".join(CLAUSE_ATTRIBUTES)})', str(key))
        for key in CLAUSE_ATTRIBUTES:
            if key not in data and key not in OPTIONAL_CLAUSE_ATTRIBUTES:
                bad(f"missing attribute {key}")

        severity = data.get("severity")
        if "severity" in data and severity not in Clause.Severity.values:
            bad(f"bad severity {severity!r} (one of: {', '.join(Clause.Severity.values)})", "severity")

        actions = data.get("permitted_actions")
        ordered: tuple[str, ...] = ()
        if "permitted_actions" in data:
            if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                bad("permitted_actions must be a list of actions, e.g. [no_violation, warn]", "permitted_actions")
            elif not actions:
                bad("permitted_actions is empty: a clause must permit at least one action", "permitted_actions")
            else:
                for action in actions:
                    if action not in Action.values:
                        bad(f'unknown action "{action}" in permitted_actions (known: {", ".join(Action.values)})',
                            "permitted_actions")
                for action in sorted({a for a in actions if actions.count(a) > 1}):
                    bad(f'action "{action}" is listed twice in permitted_actions', "permitted_actions")
                # Stored mildest first, whatever order the file lists them in.
                ordered = tuple(a.value for a in SEVERITY_ORDER if a.value in actions)

        evidence = data.get("evidence_required")
        if "evidence_required" in data and (not isinstance(evidence, str) or not evidence.strip()):
            bad("evidence_required must be text saying what a decision under the clause must rest on",
                "evidence_required")

        second = data.get("requires_second_approval")
        if "requires_second_approval" in data and not isinstance(second, bool):
            bad(f"requires_second_approval must be true or false, not {second!r}", "requires_second_approval")

        appeal = data.get("appeal_window_days", DEFAULT_APPEAL_WINDOW_DAYS)
        if not _is_days(appeal):
            bad(f"appeal_window_days must be a whole number of days, not {appeal!r}", "appeal_window_days")
        elif appeal < MIN_APPEAL_WINDOW_DAYS:
            bad(f"appeal_window_days {appeal} is shorter than {MIN_APPEAL_WINDOW_DAYS} days "
                "(DSA Art. 20(1): at least six months)", "appeal_window_days")
        retention = data.get("evidence_retention_days")
        if "evidence_retention_days" in data:
            if not _is_days(retention):
                bad(f"evidence_retention_days must be a whole number of days, not {retention!r}",
                    "evidence_retention_days")
            elif _is_days(appeal) and retention < appeal:
                bad(f"evidence_retention_days {retention} is shorter than appeal_window_days {appeal}: the "
                    "evidence would be purged before an appeal could be decided", "evidence_retention_days")

        category = data.get("dsa_category")
        if "dsa_category" in data and category not in DSA_CATEGORIES:
            if category in RENAMED_DSA_CATEGORIES:
                bad(f"dsa_category {category} was renamed {RENAMED_DSA_CATEGORIES[category]} by the DSA "
                    "Transparency Database on 1 July 2025", "dsa_category")
            else:
                bad(f"unknown dsa_category {category!r} (a category value of the DSA Transparency Database API, "
                    "e.g. STATEMENT_CATEGORY_OTHER_VIOLATION_TC)", "dsa_category")

        if len(self.problems) > problems_before:
            return None
        return {
            "severity": severity, "permitted_actions": ordered, "evidence_required": " ".join(evidence.split()),
            "requires_second_approval": second, "evidence_retention_days": retention,
            "appeal_window_days": appeal, "dsa_category": category,
        }


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a code block opened by ``fence`` (the same character, at least as many)."""
    stripped = line.strip()
    return bool(stripped) and set(stripped) == {fence[0]} and len(stripped) >= len(fence)


def _is_days(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _plain_text(lines: list[str]) -> str:
    """The clause text: paragraphs separated by a blank line, hard-wrapped lines joined, list items kept."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if not line.strip():
            if current:
                paragraphs.append("\n".join(current))
                current = []
        elif current and not _LIST_ITEM_RE.match(line):
            current[-1] = f"{current[-1]} {line.strip()}"
        else:
            current.append(line.strip())
    return "\n\n".join(paragraphs)
