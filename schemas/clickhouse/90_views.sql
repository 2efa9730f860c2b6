-- Investigator views: exact, de-duplicated reads without FINAL (argMax per key).
--
-- account_minute_v: one row per (account_id, minute), the highest version.
-- alerts_latest_v:  one row per alert_id, its latest version.
-- Example: SELECT account_id, sum(events) FROM distillwatch.account_minute_v
--          WHERE minute >= now() - 3600 GROUP BY account_id ORDER BY 2 DESC LIMIT 20
CREATE VIEW IF NOT EXISTS {database}.account_minute_v AS
SELECT
    account_id,
    minute,
    max(version) AS latest_version,
    argMax(events, version) AS events,
    argMax(input_tokens, version) AS input_tokens,
    argMax(output_tokens, version) AS output_tokens,
    argMax(errors, version) AS errors,
    argMax(throttled, version) AS throttled,
    argMax(cot_events, version) AS cot_events,
    argMax(tool_events, version) AS tool_events,
    argMax(novel_prompts, version) AS novel_prompts,
    argMax(latency_ms_sum, version) AS latency_ms_sum,
    argMax(n_chat, version) AS n_chat,
    argMax(n_coding, version) AS n_coding,
    argMax(n_reasoning, version) AS n_reasoning,
    argMax(n_math, version) AS n_math,
    argMax(n_agentic, version) AS n_agentic,
    argMax(n_tool_use, version) AS n_tool_use,
    argMax(n_vision, version) AS n_vision,
    argMax(n_writing, version) AS n_writing,
    argMax(n_safety_probe, version) AS n_safety_probe,
    argMax(n_other, version) AS n_other,
    argMax(models, version) AS models
FROM {database}.account_minute
GROUP BY account_id, minute;

CREATE VIEW IF NOT EXISTS {database}.alerts_latest_v AS
SELECT
    alert_id,
    max(version) AS latest_version,
    argMax(state, version) AS state,
    argMax(subject_kind, version) AS subject_kind,
    argMax(subject_id, version) AS subject_id,
    argMax(accounts, version) AS accounts,
    argMax(score, version) AS score,
    argMax(severity, version) AS severity,
    argMax(detector, version) AS detector,
    argMax(reasons_json, version) AS reasons_json,
    min(first_seen) AS first_seen,
    argMax(window_end, version) AS window_end,
    argMax(events, version) AS events,
    argMax(emitted_at, version) AS last_emitted_at
FROM {database}.alerts
GROUP BY alert_id;
