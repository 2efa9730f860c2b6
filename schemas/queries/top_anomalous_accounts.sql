-- Question: which accounts were the most anomalous in a period?
--
-- Every account scored in [from, to) whose highest score reached min_score,
-- most anomalous first, with how often it was flagged and the top reason of
-- its account alerts. Exact without FINAL (scorings counted by distinct ts).
--
-- @param from DateTime = 1970-01-01 00:00:00  start of the period, event time UTC (inclusive)
-- @param to DateTime = 2100-01-01 00:00:00  end of the period, event time UTC (exclusive)
-- @param min_score Float64 = 0.5  lowest max_score listed
-- @param limit UInt32 = 20  rows returned
--
-- Output columns:
--   account_id        the account
--   max_score         highest calibrated score in the period
--   severity          severity of that highest scoring
--   scorings          scorings in the period
--   flagged_scorings  scorings at or above the alert threshold (severity not empty)
--   first_flagged     event time of the first flagged scoring (1970-01-01 if none)
--   last_scored       event time of the last scoring
--   alerts            alert incidents (account or cluster) naming the account in the period
--   top_reason        first reason of its highest-scoring account alert ('' if none)
SELECT
    account_id,
    round(max_score, 3) AS max_score,
    peak_severity AS severity,
    scorings,
    flagged_scorings,
    first_flagged,
    last_scored,
    alerts,
    top_reason
FROM
(
    SELECT
        account_id,
        max(score) AS max_score,
        argMax(severity, score) AS peak_severity,
        uniqExact(ts) AS scorings,
        uniqExactIf(ts, severity != '') AS flagged_scorings,
        minIf(ts, severity != '') AS first_flagged,
        max(ts) AS last_scored
    FROM {db}.account_scores
    WHERE ts >= {from} AND ts < {to}
    GROUP BY account_id
    HAVING max_score >= {min_score}
) AS scored
ANY LEFT JOIN
(
    SELECT
        arrayJoin(accounts) AS account_id,
        uniqExact(alert_id) AS alerts,
        argMaxIf(reason_features[1], score, subject_kind = 'account') AS top_reason
    FROM {db}.alerts
    WHERE window_end >= {from} AND first_seen < {to}
    GROUP BY account_id
) AS alerted USING (account_id)
ORDER BY max_score DESC, flagged_scorings DESC, account_id
LIMIT {limit}
