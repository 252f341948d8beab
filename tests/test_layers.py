"""DESIGN.md's one-way dependencies, kept: the import contract (``make lint`` runs it too) and the reads it
cannot see. A lower app never reads a higher one's tables, not through an import, and not behind one:
``apps.get_model``, raw SQL naming the table, or a reverse relation (``case.flags``, ``decision__case__flags__…``).

The layers are read from pyproject.toml's ``[tool.importlinter]`` contract, so there is one list of them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.apps import apps
from django.db.models import QuerySet

from tests.support import ROOT

QUERYSET_METHODS = sorted(name for name in dir(QuerySet) if not name.startswith("_"))


def layers() -> list[list[str]]:
    """The contract's layers, top first; each a list of the apps on that line (an optional layer, in
    parentheses, only once it is an installed app)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    installed = {app.name for app in apps.get_app_configs()}
    return [[name for name in (part.strip().strip("()") for part in re.split(r"[|:]", line)) if name in installed]
            for line in contract["layers"]]


def _app_of(package: str):
    return next(config for config in apps.get_app_configs() if config.name == package)


def forbidden_patterns(package: str) -> dict[str, re.Pattern]:
    """What ``package``'s code must not say: the tables, model names and reverse relations of the apps above
    it, and of the other apps on its own line (each app on a line is independent of the others)."""
    order = layers()
    level = next(i for i, line in enumerate(order) if package in line)
    higher = [name for line in order[:level] for name in line] + [n for n in order[level] if n != package]
    patterns = {}
    for other in higher:
        config = _app_of(other)
        label = re.escape(config.label)
        patterns[f"apps.get_model of {config.label}"] = re.compile(rf"get_model\(\s*[\"']{label}[\"'.]")
        for model in config.get_models():
            table = re.escape(model._meta.db_table)
            patterns[f"table {model._meta.db_table}"] = re.compile(rf"\b{table}\b")
            for field in model._meta.get_fields():
                target = getattr(field, "related_model", None)
                if field.auto_created or not field.is_relation or target is None or target is model:
                    continue
                if target._meta.app_config is config:
                    continue
                accessor = field.remote_field.get_accessor_name()
                query = field.related_query_name()
                if not accessor or accessor.endswith("+"):
                    continue
                methods = "|".join(QUERYSET_METHODS)
                patterns[f"{model._meta.label}.{field.name} backwards ({accessor})"] = re.compile(
                    rf"\.{re.escape(accessor)}\.(?:{methods})\b"           # case.flags.filter(…), in a template too
                    rf"|(?:(?<![\w.])|__){re.escape(query)}__\w"           # flags__detector=…, "…__flags__…"
                    rf"|__{re.escape(query)}[\"']"                         # "decision__case__flags"
                    rf"|_related\([^)]*[\"']{re.escape(accessor)}[\"']")   # prefetch_related("flags")
    return patterns


def sources(package: str, root: Path = ROOT) -> list[Path]:
    """The package's code (not its migrations, which are history) and its own templates folder."""
    config = _app_of(package)
    folder = root / Path(*package.split("."))
    files = [p for p in folder.rglob("*.py") if "migrations" not in p.parts]
    templates = root / "templates" / config.label
    return files + (list(templates.rglob("*.html")) if templates.is_dir() else [])


def violations(package: str, root: Path = ROOT) -> list[str]:
    patterns = forbidden_patterns(package)
    found = []
    for path in sources(package, root):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for what, pattern in patterns.items():
                if pattern.search(line):
                    found.append(f"{path.relative_to(root)}:{number}: {what}: {line.strip()}")
    return found


LOWER_APPS = [name for line in layers()[1:] for name in line]


@pytest.mark.parametrize("package", LOWER_APPS)
def test_no_app_reads_the_tables_of_an_app_above_it_or_beside_it(package):
    assert violations(package) == []


def test_the_scan_sees_each_kind_of_hidden_read(tmp_path):
    """The scan itself: each way cases used to read flags (and appeals, flags) is found."""
    folder = tmp_path / "reviewapp" / "cases"
    folder.mkdir(parents=True)
    (folder / "selectors.py").write_text(
        'flag = apps.get_model("flags", "Flag")\n'
        'cursor.execute("SELECT count(*) FROM flags_flag WHERE case_id = %s", [pk])\n'
        'rows = case.flags.order_by("-id")\n'
        'cases.filter(flags__detector__slug=slug)\n'
        'Case.objects.prefetch_related("flags")\n')
    (folder / "migrations").mkdir()
    (folder / "migrations" / "0001_initial.py").write_text('"flags_flag"\n')  # history: not scanned
    (tmp_path / "templates" / "cases").mkdir(parents=True)
    (tmp_path / "templates" / "cases" / "case.html").write_text("{{ case.flags.count }}\n")
    found = violations("reviewapp.cases", root=tmp_path)
    assert [line.split(":")[1] for line in found if "templates" not in line] == ["1", "2", "3", "4", "5"]
    assert any(line.startswith("templates/cases/case.html:1:") for line in found)
    appeals = tmp_path / "appeals"
    appeals.mkdir()
    (appeals / "selectors.py").write_text('groups = {"detector": "decision__case__flags__detector__slug"}\n')
    assert len(violations("appeals", root=tmp_path)) == 1


def test_the_import_contract_holds():
    """lint-imports over pyproject.toml's contract (``make lint`` runs the same): no import breaks a layer."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout
