"""`python -m bench.forum_matching`: what matching inbound Forum intelligence costs with 10,000 and with 1,000,000
local accounts, and the ratio (flat means close to 1).

A fresh database (bench/ingest.py's BenchDatabase), migrated. Local accounts are written straight in SQL
(``cases_account``), each with a pseudonym row (``forum_accountpseudonym``: the index matching reads; the bench
stores random 64-hex values, the HMAC's shape) and one prompt fingerprint (``forum_localfingerprint``: a random
64-bit simhash split into its four 16-bit bands). Then the matching functions of reviewapp/forum/inbound.py run as
a pull would: ``pseudonym_matches`` for a batch of 100 inbound pseudonyms (half of them ours) and
``fingerprint_matches`` for 20 inbound simhashes (half within distance 3 of one of ours), the median of 25 rounds,
first at 10,000 accounts, then after growing to 1,000,000. Wall-clock on a shared machine: read the ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.ingest import BenchDatabase, log, manage, server_from_settings

SMALL, LARGE = 10_000, 1_000_000
ROUNDS = 25
GOAL = "flat as local accounts grow"
# What "flat" is taken to mean: at 100x the accounts, at most this many times the time (printed, never failing).
# Pseudonyms are one unique-index probe each (~1x). A fingerprint's candidates grow as N / 65,536 per band (about
# 15 a band at 1,000,000, under 1 at 10,000), each compared in Python: measured 2.0-2.7x here; a scan is ~100x.
FLAT_RATIO = 3.0


TABLES = ("cases_account", "forum_accountpseudonym", "forum_localfingerprint")
# Growing by at least this many rows drops the three tables' secondary indexes and constraints first and builds
# them again after (as a bulk load does): maintaining eight indexes row by row took most of a minute at 1,000,000.
BULK = 100_000


def secondary_indexes(tables: tuple[str, ...] = TABLES) -> tuple[list[str], list[str]]:
    """(drop, create): statements that take the tables' unique and foreign-key constraints and plain indexes off,
    and those that put them back exactly (their definitions from the catalog). Primary keys stay. (bench/export.py
    loads the audit trail this way too.)"""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype
                          FROM pg_constraint WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('u', 'f')
                          ORDER BY contype DESC, conname""", [list(tables)])
        constraints = cursor.fetchall()
        cursor.execute("""SELECT i.indexname, i.indexdef FROM pg_indexes i
                          WHERE i.tablename = ANY(%s) AND NOT EXISTS (
                            SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.contype IN ('p', 'u'))
                          ORDER BY i.indexname""", [list(tables)])
        indexes = cursor.fetchall()
    drop = [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for table, name, _, kind in constraints if kind == "f"]
    drop += [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for table, name, _, kind in constraints if kind == "u"]
    drop += [f'DROP INDEX "{name}"' for name, _ in indexes]
    create = [definition for _, definition in indexes]
    create += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, definition, kind
               in constraints if kind == "u"]
    create += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, definition, kind
               in constraints if kind == "f"]
    return drop, create


def _grow(db: BenchDatabase, start: int, stop: int) -> None:
    """Accounts start+1..stop, each with a pseudonym and a fingerprint (SQL only: fast, and what is measured is
    the lookup, not the HMAC). A bulk growth loads without the secondary indexes and builds them after."""
    drop, create = secondary_indexes() if stop - start >= BULK else ([], [])
    db.execute(*drop)
    db.execute(
        f"""INSERT INTO cases_account (external_id, organization_id, contact_email, region, researcher_programme,
                                       enforcement_status, first_flagged_at)
            SELECT 'bench_acct_' || g, '', '', '', false, 'none', now() FROM generate_series({start + 1}, {stop}) g""",
        """INSERT INTO forum_accountpseudonym (account_id, key_id, pseudonym)
            SELECT id, 'bench', md5(external_id) || md5('x' || external_id) FROM cases_account
            WHERE id > (SELECT coalesce(max(account_id), 0) FROM forum_accountpseudonym)""",
        """INSERT INTO forum_localfingerprint (account_id, simhash, band0, band1, band2, band3, flag_id)
            SELECT id, h, h & 65535, (h >> 16) & 65535, (h >> 32) & 65535, (h >> 48) & 65535, id FROM (
              SELECT a.id, ('x' || substr(md5('fp' || a.external_id), 1, 16))::bit(64)::bigint AS h
              FROM cases_account a WHERE a.id > (SELECT coalesce(max(account_id), 0) FROM forum_localfingerprint)) s""",
    )
    db.execute(
        *create,
        # As autovacuum would: the visibility map lets the matching lookups answer from the indexes alone.
        "VACUUM ANALYZE cases_account", "VACUUM ANALYZE forum_accountpseudonym",
        "VACUUM ANALYZE forum_localfingerprint",
    )


def _measure(rng: random.Random) -> tuple[float, float]:
    from django.db import connection

    from reviewapp.forum import inbound

    with connection.cursor() as cursor:
        cursor.execute("SELECT pseudonym FROM forum_accountpseudonym ORDER BY random() LIMIT 50")
        ours = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT simhash FROM forum_localfingerprint ORDER BY random() LIMIT 10")
        local = [row[0] for row in cursor.fetchall()]
    pseudonym_times, fingerprint_times = [], []
    for _ in range(ROUNDS):
        batch = set(ours) | {f"{rng.getrandbits(256):064x}" for _ in range(50)}
        started = time.perf_counter()
        found = inbound.pseudonym_matches(batch, key_id="bench")
        pseudonym_times.append(time.perf_counter() - started)
        assert len(found) == len(ours)
        near = [(h & 0xFFFF_FFFF_FFFF_FFFF) ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for h in local]
        simhashes = {f"{h:016x}" for h in near} | {f"{rng.getrandbits(64):016x}" for _ in range(10)}
        started = time.perf_counter()
        matched = inbound.fingerprint_matches(simhashes)
        fingerprint_times.append(time.perf_counter() - started)
        assert len(matched) >= len(set(near))
    return statistics.median(pseudonym_times), statistics.median(fingerprint_times)


def run(large: int = LARGE) -> list[str]:
    """Measure in a fresh database of its own; the report's lines."""
    workdir = Path(tempfile.mkdtemp(prefix="reviewapp-bench-forum-"))
    server, maintenance_db = server_from_settings()
    db = BenchDatabase(server, maintenance_db, workdir)
    try:
        db.create()
        env = db.env()
        manage(env, "migrate", "--verbosity", "0", "--skip-checks")  # the tables; the URLconf is not measured
        os.environ.update(env)
        import django

        django.setup()
        rng = random.Random(20261202)
        results = {}
        for size, start in ((SMALL, 0), (large, SMALL)):
            log(f"{size:,} local accounts with pseudonyms and fingerprints")
            _grow(db, start, size)
            results[size] = _measure(rng)
            log(f"measured at {size:,}")
    finally:
        from django.apps import apps

        if apps.ready:
            from django.db import connections

            connections.close_all()
        db.drop()
    (p_small, f_small), (p_large, f_large) = results[SMALL], results[large]

    def line(name: str, small: float, big: float) -> str:
        ratio = big / small
        verdict = "met" if ratio <= FLAT_RATIO else "MISSED"
        return (f"  {name:<12} {SMALL:>9,} accounts: {small * 1000:7.2f} ms   {large:>9,}: {big * 1000:7.2f} ms   "
                f"ratio {ratio:5.2f}   goal {GOAL} (ratio <= {FLAT_RATIO}): {verdict}")

    return [f"Forum matching, median of {ROUNDS} rounds (100 inbound pseudonyms; 20 inbound simhashes, Hamming <= 3 "
            f"over four indexed 16-bit bands); ratio = time at {large:,} / time at {SMALL:,} local accounts:",
            line("pseudonyms", p_small, p_large), line("fingerprints", f_small, f_large),
            f"  (a scan would grow with the accounts, ~{large / SMALL:,.0f}x; a fingerprint's band candidates grow as "
            "N / 65,536 per band, so some growth there is expected)"]


def print_report(large: int = LARGE) -> int:
    """For `make bench` (bench/main.py): this benchmark in a process of its own, its report printed."""
    from bench.stack import print_subprocess_report

    return print_subprocess_report("Forum matching", "bench.forum_matching", "--large", str(large))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=LARGE, help="local accounts of the second measure")
    args = parser.parse_args()
    print("\n".join(run(args.large)))


if __name__ == "__main__":
    main()
