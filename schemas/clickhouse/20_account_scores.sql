-- account_scores: every scoring of an account, with the features behind the score
-- and the account's infrastructure (pipeline.records.ScoreRow).
--
-- Idempotent: a replayed score has the same (account_id, ts, detector) and
-- replaces the earlier copy (ReplacingMergeTree without version: last insert
-- wins, and replays are identical). Read `FROM account_scores FINAL` when
-- exact counts matter. ip_prefixes hold network prefixes (/24, /48), never
-- addresses. Retention: 180 days after ingestion. The TTL line is stripped
-- for servers older than 19.6.
CREATE TABLE IF NOT EXISTS {database}.account_scores
(
    account_id String COMMENT 'billing account',
    ts DateTime CODEC(DoubleDelta, ZSTD(1)) COMMENT 'event time of the scoring, UTC',
    score Float64 COMMENT 'calibrated anomaly score in [0, 1]',
    severity LowCardinality(String) COMMENT 'low, medium, high, critical, empty below the alert threshold',
    detector LowCardinality(String) COMMENT 'detector that produced the score',
    feature_names Array(LowCardinality(String)) COMMENT 'feature names, parallel to the three arrays below',
    feature_values Array(Float64) COMMENT 'feature values of the account',
    baseline_values Array(Float64) COMMENT 'baseline (population) value of each feature',
    contributions Array(Float64) COMMENT 'contribution of each feature to the score',
    org_id String COMMENT 'organisation owning the account, empty if unknown',
    ip_prefixes Array(String) COMMENT 'client network prefixes (/24 IPv4, /48 IPv6), never addresses',
    asns Array(Int64) COMMENT 'autonomous systems seen',
    user_agents Array(String) COMMENT 'user agents seen',
    payment_fingerprints Array(String) COMMENT 'opaque payment instrument hashes seen',
    top_templates Array(String) COMMENT 'most frequent prompt template hashes',
    models Array(LowCardinality(String)) COMMENT 'models requested',
    cluster_id String COMMENT 'cluster of accounts acting together, empty if none',
    ingested_at DateTime DEFAULT now() COMMENT 'when the sink wrote the row, the retention clock'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (account_id, ts, detector)
TTL ingested_at + INTERVAL 180 DAY
SETTINGS index_granularity = 8192;
