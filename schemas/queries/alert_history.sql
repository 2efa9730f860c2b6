-- Question: what alerts named an account (or cluster), how did they evolve, and what did analysts decide?
--
-- Every state change of every alert whose subject is, or whose accounts
-- include, the given id (account id, or cluster id), interleaved with every
-- analyst verdict about that id or about one of those alerts (feedback table),
-- in wall-clock order. Exact without FINAL (DISTINCT on the tables' keys).
--
-- @param subject_id String  an account id or a cluster id
--
-- Output columns:
--   at          wall-clock time (UTC): when the alert message was produced / the verdict given
--   kind        'alert' or 'verdict'
--   alert_id    the alert ('' for a verdict about the account only)
--   subject     the alert's subject_kind:subject_id, or the verdict's account
--   status      alert state (open, update, resolved) or the verdict (true_positive, ...)
--   severity    alert severity ('' for a verdict)
--   score       alert score (0 for a verdict)
--   event_time  end of the alert's evidence window (event time, UTC; 1970-01-01 for a verdict)
--   detail      alert: top reasons 'feature=value (baseline b)'; verdict: 'analyst: note'
SELECT at, kind, alert_id, subject, status, severity, score, event_time, detail
FROM
(
    SELECT DISTINCT
        emitted_at AS at,
        'alert' AS kind,
        alert_id,
        concat(subject_kind, ':', subject_id) AS subject,
        state AS status,
        severity,
        round(score, 3) AS score,
        window_end AS event_time,
        arrayStringConcat(arrayMap((f, v, b) -> concat(f, '=', toString(round(v, 3)), ' (baseline ',
            toString(round(b, 3)), ')'), arraySlice(reason_features, 1, 3), arraySlice(reason_values, 1, 3),
            arraySlice(reason_baselines, 1, 3)), '; ') AS detail,
        version
    FROM {db}.alerts
    WHERE subject_id = {subject_id} OR has(accounts, {subject_id})

    UNION ALL

    SELECT DISTINCT
        ts AS at,
        'verdict' AS kind,
        alert_id,
        account_id AS subject,
        toString(verdict) AS status,
        '' AS severity,
        0. AS score,
        toDateTime(0) AS event_time,
        concat(analyst, ': ', note) AS detail,
        toUInt32(0) AS version
    FROM {db}.feedback
    WHERE account_id = {subject_id}
       OR alert_id IN
          (SELECT alert_id FROM {db}.alerts WHERE subject_id = {subject_id} OR has(accounts, {subject_id}))
)
ORDER BY at, kind, alert_id, version
