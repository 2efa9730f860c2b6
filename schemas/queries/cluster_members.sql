-- Question: who are the members of a cluster, and what infrastructure does each use?
--
-- Members are every account any version of the cluster's alerts named
-- (alerts with subject_kind = 'cluster'); their infrastructure comes from all
-- their scorings (account_scores arrays: prefixes, never addresses).
-- See cluster_shared_infrastructure.sql for what the members have in common.
--
-- @param cluster_id String  the cluster id (alerts.subject_id of a cluster alert)
--
-- Output columns:
--   account_id            member account
--   max_score             its highest calibrated score
--   last_severity         severity of its latest scoring ('' below the threshold)
--   first_scored          event time of its first scoring (UTC)
--   last_scored           event time of its last scoring (UTC)
--   org_id                its organisation ('' if unknown)
--   ip_prefixes           client network prefixes seen (/24, /48)
--   asn_user_agents       'ASN | user agent' pairs seen
--   payment_fingerprints  payment instrument hashes seen
--   top_templates         its most frequent prompt template hashes at the latest scoring
SELECT
    account_id,
    round(max(score), 3) AS max_score,
    argMax(severity, ts) AS last_severity,
    min(ts) AS first_scored,
    max(ts) AS last_scored,
    argMax(org_id, ts) AS org_id,
    arraySort(groupUniqArrayArray(ip_prefixes)) AS ip_prefixes,
    arraySort(groupUniqArrayArray(arrayMap((a, u) -> concat(toString(a), ' | ', u), asns, user_agents)))
        AS asn_user_agents,
    arraySort(groupUniqArrayArray(payment_fingerprints)) AS payment_fingerprints,
    argMax(top_templates, ts) AS top_templates
FROM {db}.account_scores
WHERE account_id IN
(
    SELECT arrayJoin(accounts) FROM {db}.alerts WHERE subject_kind = 'cluster' AND subject_id = {cluster_id}
)
GROUP BY account_id
ORDER BY max_score DESC, account_id
