"""`make bench BENCH_ARGS="--mode scale"` runs end to end at tiny sizes: it seeds, claims with 8 threads, renders the
five pages, verifies its seeded chain, prints every figure as a ratio with its goal, and drops its database. (The
figures themselves are bench/scale.py's, at 10,000 to 1,000,000 rows; nothing here looks at a time.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.xdist_group("bench")]

ROOT = Path(__file__).resolve().parent.parent


def test_the_scale_bench_prints_each_ratio_with_its_goal_and_leaves_no_database():
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--scale-sizes", "200,400", "--claims", "3", "--requests", "1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=180,
        check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout
    assert re.search(r"^\s+200 open\s+p50 .* baseline, all its rounds", report, re.M), report
    claims = re.findall(r"^\s+(\d+) open .* baseline p95 .* goal ≤ 1\.5×: (?:met|MISSED)", report, re.M)
    assert claims == ["400"], report
    for page in ("queue", "case", "campaign", "audit explorer", "decision register"):
        assert re.search(rf"^\s+{page}\s+200\s+p50 .*, \d+ queries\s+baseline, all its rounds", report, re.M), report
        rows = re.findall(rf"^\s+{page}\s+(\d+)\s+p50 .*, \d+ queries .* goal ≤ 2×: (?:met|MISSED)", report, re.M)
        assert rows == ["400"], (page, report)
    assert re.search(r"verify_audit .* over [\d,]+ events: .* goal ≤ 3×: (?:met|MISSED)", report), report
    databases = re.findall(r"created database (\w+)", done.stderr)
    assert len(databases) == 2, done.stderr  # the growing one and the baseline
    if os.environ.get("DATABASE_URL"):  # (the embedded server's databases are its own)
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            left = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", [databases]).fetchall()
        assert not left, f"{left} left behind"
