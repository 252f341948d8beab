\pset pager off
\echo ### Q1 _ANY_STORED
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT EXISTS (SELECT 1 FROM unnest(ARRAY(SELECT 1::bigint FROM generate_series(1,1000)), ARRAY(SELECT 'new-' || g FROM generate_series(1,1000) g)) AS s(detector_id, external_id) JOIN flags_flagkey k ON k.detector_id = s.detector_id AND k.external_id = s.external_id);
\echo ### Q2 _EXISTING
BEGIN;
CREATE TEMP TABLE flags_staging AS SELECT g AS ord, 1::bigint AS detector_id, 'f-' || (g * 997) AS external_id, md5(g::text) AS content_hash FROM generate_series(1, 1000) g;
ANALYZE flags_staging;
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT s.ord, f.content_hash = s.content_hash FROM flags_staging s JOIN flags_flagkey k ON k.detector_id = s.detector_id AND k.external_id = s.external_id JOIN flags_flag f ON f.id = k.flag_id AND f.received_at = k.received_at WHERE f.batch_id <> 0;
ROLLBACK;
\echo ### Q3 _PENDING
BEGIN;
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off;
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) WITH batch AS (SELECT f.id, f.received_at FROM flags_flag f WHERE f.case_id IS NULL AND f.id > 0 AND (1 = 1 OR (hashtext(f.account_external_id) & 2147483647) % 1 = 0) AND NOT EXISTS (SELECT 1 FROM flags_flagsetaside s WHERE s.flag_id = f.id) ORDER BY f.id LIMIT 1000 FOR NO KEY UPDATE SKIP LOCKED) SELECT f.id, f.external_id, f.account_external_id, f.organization_id, f.cluster_id, d.slug, f.detector_id, f.received_at FROM batch JOIN flags_flag f ON f.id = batch.id AND f.received_at = batch.received_at JOIN flags_detector d ON d.id = f.detector_id;
\echo ### Q4 _ATTACH (literal arrays and bounds, as the code sends them)
SELECT format('{%s}', string_agg(g::text, ',')) AS ids, format('{%s}', string_agg('7', ',')) AS cases,
       min(received_at) AS received_from, max(received_at) AS received_to
FROM generate_series(999001, 1000000) g JOIN flags_flag f ON f.id = g \gset
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) WITH attached AS (UPDATE flags_flag f SET case_id = m.case_id FROM unnest(:'ids'::bigint[], :'cases'::bigint[]) AS m(flag_id, case_id) WHERE f.id = ANY(:'ids'::bigint[]) AND f.id = m.flag_id AND f.received_at >= :'received_from' AND f.received_at <= :'received_to' RETURNING f.case_id, f.signal, f.request_count, f.score, f.observed_to) SELECT case_id, count(*) FROM attached GROUP BY case_id;
ROLLBACK;
\echo ### Q5 _OLDEST_PENDING
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT f.received_at FROM flags_flag f WHERE f.case_id IS NULL AND NOT EXISTS (SELECT 1 FROM flags_flagsetaside s WHERE s.flag_id = f.id) ORDER BY f.id LIMIT 1;
\echo ### Q6 case flags (flags/selectors.py)
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT id, external_id, signal, score, observed_from, observed_to FROM flags_flag WHERE case_id = 4242 ORDER BY observed_from, id;
\echo ### Q7 account flags with received_at bound (forum/content.py)
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT id, account_external_id, evidence FROM flags_flag WHERE account_external_id IN ('acct_17', 'acct_4242') AND received_at <= '2026-09-01';
\echo ### Q8 account flags without bound (flags/demo.py summary)
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT count(*) FROM flags_flag WHERE account_external_id IN ('acct_17', 'acct_4242') AND external_id LIKE 'demo-%';
\echo ### Q9 retention by id (flags/retention.py)
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT id FROM flags_flag WHERE id = ANY(ARRAY[17, 250000, 900000]) AND evidence IS NOT NULL AND NOT (evidence ? 'removed_under_retention') ORDER BY id;
\echo ### Q10 forum inbound cursor (forum/inbound.py)
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT f.id FROM flags_flag f WHERE f.id > 998000 ORDER BY f.id LIMIT 500;
\echo ### Q11 received_at window (metrics-style)
EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT count(*) FROM flags_flag WHERE received_at >= now() - interval '1 day';
