-- account_minute: per-account, per-event-time-minute totals (pipeline.records.AggregateRow).
--
-- Idempotent: the worker re-emits a minute cumulatively with a growing `version`
-- (events counted so far), and a replay re-sends the same version. The
-- ReplacingMergeTree(version) keeps, per (account_id, minute), the row with
-- the highest version, so nothing is counted twice once parts merge.
-- Before a merge, duplicates may still be stored: investigators read the
-- view account_minute_v (argMax per key, correct at any moment, no FINAL),
-- or write `FROM account_minute FINAL`. Never sum the raw table.
-- Retention: 90 days after ingestion (not event time, so replayed history is kept).
-- The TTL line is stripped for servers older than 19.6 (see pipeline/store.py).
CREATE TABLE IF NOT EXISTS {database}.account_minute
(
    account_id String COMMENT 'billing account (contract account_id)',
    minute DateTime CODEC(DoubleDelta, ZSTD(1)) COMMENT 'start of the event-time minute, UTC',
    version UInt64 CODEC(T64, ZSTD(1)) COMMENT 'events counted so far in the minute, highest wins',
    events UInt64 CODEC(T64, ZSTD(1)) COMMENT 'requests in the minute, each event_id once',
    input_tokens UInt64 CODEC(T64, ZSTD(1)) COMMENT 'sum of prompt tokens',
    output_tokens UInt64 CODEC(T64, ZSTD(1)) COMMENT 'sum of completion tokens',
    errors UInt64 CODEC(T64, ZSTD(1)) COMMENT 'responses with status >= 500',
    throttled UInt64 CODEC(T64, ZSTD(1)) COMMENT 'responses with status 429',
    cot_events UInt64 CODEC(T64, ZSTD(1)) COMMENT 'prompts flagged as chain-of-thought elicitation',
    tool_events UInt64 CODEC(T64, ZSTD(1)) COMMENT 'prompts sending at least one tool definition',
    novel_prompts UInt64 CODEC(T64, ZSTD(1)) COMMENT 'prompts whose simhash is far from recent ones of the account',
    latency_ms_sum Float64 CODEC(Gorilla, ZSTD(1)) COMMENT 'sum of latency_ms (divide by events for the mean)',
    n_chat UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled chat',
    n_coding UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled coding',
    n_reasoning UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled reasoning',
    n_math UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled math',
    n_agentic UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled agentic',
    n_tool_use UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled tool_use',
    n_vision UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled vision',
    n_writing UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled writing',
    n_safety_probe UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled safety_probe',
    n_other UInt32 CODEC(T64, ZSTD(1)) COMMENT 'prompts labelled other or unlabelled',
    models Array(LowCardinality(String)) COMMENT 'distinct models requested (at most 8)',
    ingested_at DateTime DEFAULT now() COMMENT 'when the sink wrote the row, the retention clock'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(minute)
ORDER BY (account_id, minute)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS index_granularity = 8192;
