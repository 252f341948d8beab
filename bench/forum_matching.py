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


def _grow(db: BenchDatabase, start: int, stop: int) -> None:
    """Accounts start+1..stop, each with a pseudonym and a fingerprint (SQL only: fast, and what is measured is
    the lookup, not the HMAC)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=LARGE, help="local accounts of the second measure")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="reviewapp-bench-forum-"))
    server, maintenance_db = server_from_settings()
    db = BenchDatabase(server, maintenance_db, workdir)
    try:
        db.create()
        env = db.env()
        manage(env, "migrate", "--verbosity", "0")
        os.environ.update(env)
        import django

        django.setup()
        rng = random.Random(20261202)
        results = {}
        for size, start in ((SMALL, 0), (args.large, SMALL)):
            log(f"{size:,} local accounts with pseudonyms and fingerprints")
            _grow(db, start, size)
            results[size] = _measure(rng)
            log(f"measured at {size:,}")
        (p_small, f_small), (p_large, f_large) = results[SMALL], results[args.large]
        print(f"Forum matching, median of {ROUNDS} rounds (100 inbound pseudonyms; 20 inbound simhashes, "
              f"Hamming <= 3 over four indexed 16-bit bands):")
        print(f"  pseudonyms   {SMALL:>9,} accounts: {p_small * 1000:7.2f} ms   {args.large:>9,}: "
              f"{p_large * 1000:7.2f} ms   ratio {p_large / p_small:5.2f}")
        print(f"  fingerprints {SMALL:>9,} accounts: {f_small * 1000:7.2f} ms   {args.large:>9,}: "
              f"{f_large * 1000:7.2f} ms   ratio {f_large / f_small:5.2f}")
    finally:
        from django.db import connections

        connections.close_all()
        db.drop()


if __name__ == "__main__":
    main()
