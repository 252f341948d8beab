-- 1,000,000 flags over 24,000 accounts, received 2026-07-01 .. now (six monthly partitions), ~300-byte evidence;
-- all grouped but the newest 1,000 (pending). Scratch database only: the case foreign key is dropped to seed
-- case ids without 24,000 cases.
ALTER TABLE flags_flag DROP CONSTRAINT flags_flag_case_id_1cb3962c_fk_cases_case_id;
INSERT INTO flags_detector (slug, name, owner_team, description, active, created_at) VALUES ('template-miner', 'T', '', '', true, now());
SELECT flags_flag_partition_create(d::date) FROM generate_series('2026-07-01'::date, '2026-11-01', '1 month') d;
INSERT INTO flags_flag (id, external_id, schema_version, detector_version, account_external_id, organization_id, signal,
    score, observed_from, observed_to, request_count, cluster_id, evidence, content_hash, received_at, case_id,
    detector_id, batch_id)
SELECT g, 'f-' || g, 1, '3.2.0', 'acct_' || (g % 24000), '', 'templated_prompts', random(), t - interval '2 days', t,
    1000, 'c-' || (g % 500), jsonb_build_object('excerpts', jsonb_build_array(repeat('x', 250))),
    md5(g::text) || md5(g::text), t, CASE WHEN g > 999000 THEN NULL ELSE 1 + g % 24000 END,
    (SELECT id FROM flags_detector), 1 + g / 1000
FROM (SELECT g, timestamptz '2026-07-01' + (g / 1000000.0) * (now() - interval '1 minute' - timestamptz '2026-07-01') AS t
      FROM generate_series(1, 1000000) g) s;
INSERT INTO flags_flagkey (detector_id, external_id, flag_id, received_at)
SELECT detector_id, external_id, id, received_at FROM flags_flag;
SELECT setval('flags_flag_id_seq', 1000000);
VACUUM ANALYZE flags_flag, flags_flagkey;
SELECT tableoid::regclass, count(*) FROM flags_flag GROUP BY 1 ORDER BY 1;
