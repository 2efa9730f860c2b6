-- feedback: analysts' verdicts on alerts and accounts (pipeline.records.FeedbackRow).
--
-- Idempotent: a re-sent verdict has the same (account_id, alert_id, analyst, ts)
-- and replaces the earlier copy (last insert wins). Read with FINAL for exact
-- counts. Feedback is evidence: no TTL.
CREATE TABLE IF NOT EXISTS {database}.feedback
(
    account_id String COMMENT 'account the verdict is about, empty if only an alert is named',
    alert_id String COMMENT 'alert the verdict is about, empty if only an account is named',
    verdict LowCardinality(String) COMMENT 'true_positive, false_positive or allowlist',
    analyst String COMMENT 'who gave the verdict',
    note String COMMENT 'free text from the analyst',
    ts DateTime COMMENT 'when the verdict was given, UTC'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (account_id, alert_id, analyst, ts)
SETTINGS index_granularity = 8192;
