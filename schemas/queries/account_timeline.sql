-- Question: what did one account do, minute by minute, against its baseline?
--
-- One row per event-time minute with traffic (account_minute_v: exact, no
-- double counting) joined with the account's scoring in that minute
-- (account_scores: the account's feature value next to the population
-- baseline of the same feature). Score columns are 0 / '' in minutes
-- without a scoring.
--
-- @param account_id String  the account
-- @param from DateTime = 1970-01-01 00:00:00  start, event time UTC (inclusive)
-- @param to DateTime = 2100-01-01 00:00:00  end, event time UTC (exclusive)
--
-- Output columns:
--   minute                 start of the event-time minute (UTC)
--   events                 requests in the minute
--   output_tokens          completion tokens in the minute
--   cot_share              share of chain-of-thought elicitation prompts in the minute
--   top_category           most requested prompt category in the minute
--   models                 models requested in the minute
--   score                  calibrated score of the scoring in that minute (max, 0 if none)
--   severity               its severity ('' below the alert threshold or no scoring)
--   rate_15m               feature rate_per_min_15m (requests per minute, last 15 min)
--   baseline_rate_15m      population baseline of rate_per_min_15m
--   cot_share_6h           feature cot_share_6h (chain-of-thought share, last 6 h)
--   baseline_cot_share_6h  population baseline of cot_share_6h
SELECT
    minute,
    events,
    output_tokens,
    round(cot_events / events, 3) AS cot_share,
    ['chat', 'coding', 'reasoning', 'math', 'agentic', 'tool_use', 'vision', 'writing', 'safety_probe',
     'other'][indexOf(counts, arrayReduce('max', counts))] AS top_category,
    models,
    round(max_score, 3) AS score,
    peak_severity AS severity,
    round(rate_15m, 2) AS rate_15m,
    round(baseline_rate_15m, 2) AS baseline_rate_15m,
    round(cot_share_6h, 3) AS cot_share_6h,
    round(baseline_cot_share_6h, 3) AS baseline_cot_share_6h
FROM
(
    SELECT
        minute, events, output_tokens, cot_events, models,
        [n_chat, n_coding, n_reasoning, n_math, n_agentic, n_tool_use, n_vision, n_writing, n_safety_probe,
         n_other] AS counts
    FROM {db}.account_minute_v
    WHERE account_id = {account_id} AND minute >= {from} AND minute < {to}
) AS traffic
ANY LEFT JOIN
(
    SELECT
        toStartOfMinute(ts) AS minute,
        max(score) AS max_score,
        argMax(severity, score) AS peak_severity,
        argMax(feature_values[indexOf(feature_names, 'rate_per_min_15m')], ts) AS rate_15m,
        argMax(baseline_values[indexOf(feature_names, 'rate_per_min_15m')], ts) AS baseline_rate_15m,
        argMax(feature_values[indexOf(feature_names, 'cot_share_6h')], ts) AS cot_share_6h,
        argMax(baseline_values[indexOf(feature_names, 'cot_share_6h')], ts) AS baseline_cot_share_6h
    FROM {db}.account_scores
    WHERE account_id = {account_id} AND ts >= {from} AND ts < {to}
    GROUP BY minute
) AS scored USING (minute)
ORDER BY minute
