-- alerts: every state change of every alert (contract topic anomaly.alerts).
--
-- One row per (alert_id, version): the full history of an incident is kept.
-- Idempotent: a re-delivered message has the same key and is merged away by
-- the ReplacingMergeTree. reasons are stored twice: as parallel arrays (for
-- SQL) and verbatim as reasons_json. The latest state of each incident is the
-- view alerts_latest_v. Alerts are evidence: no TTL.
CREATE TABLE IF NOT EXISTS {database}.alerts
(
    alert_id String COMMENT 'stable id of the incident across its updates',
    version UInt32 COMMENT 'increases with every message of the incident',
    state LowCardinality(String) COMMENT 'open, update or resolved',
    subject_kind LowCardinality(String) COMMENT 'account or cluster',
    subject_id String COMMENT 'the account id or the stable cluster id',
    accounts Array(String) COMMENT 'accounts involved',
    score Float64 COMMENT 'calibrated anomaly score in [0, 1]',
    severity LowCardinality(String) COMMENT 'low, medium, high or critical',
    detector LowCardinality(String) COMMENT 'detector that raised the alert',
    reason_features Array(LowCardinality(String)) COMMENT 'reasons[].feature, most important first',
    reason_values Array(Float64) COMMENT 'reasons[].value',
    reason_baselines Array(Float64) COMMENT 'reasons[].baseline',
    reason_contributions Array(Float64) COMMENT 'reasons[].contribution',
    reasons_json String CODEC(ZSTD(3)) COMMENT 'the reasons array exactly as received (JSON)',
    window_start DateTime COMMENT 'start of the event-time span of the evidence, UTC',
    window_end DateTime COMMENT 'end of the event-time span of the evidence, UTC',
    first_seen DateTime COMMENT 'event time of the earliest evidence of the incident, UTC',
    events UInt64 COMMENT 'events in the evidence',
    model_version LowCardinality(String) COMMENT 'detector configuration and model version',
    emitted_at DateTime COMMENT 'wall-clock time the message was produced, UTC'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(first_seen)
ORDER BY (subject_id, alert_id, version)
SETTINGS index_granularity = 8192;
