-- Question: what do the members of a cluster share?
--
-- Every infrastructure value (network prefix, ASN + user agent, payment
-- fingerprint, prompt template) seen on at least min_members of the cluster's
-- members, most widely shared first. Members are every account any version of
-- the cluster's alerts named; values come from their account_scores arrays.
--
-- @param cluster_id String  the cluster id (alerts.subject_id of a cluster alert)
-- @param min_members UInt32 = 2  least number of members sharing a value
--
-- Output columns:
--   facet            ip_prefix, asn_ua, payment_fingerprint or template
--   value            the shared value ('ASN | user agent' for asn_ua)
--   members_sharing  members on which the value was seen
--   cluster_size     members of the cluster
--   share            members_sharing / cluster_size
--   members          the members sharing it (sorted)
SELECT
    facet,
    value,
    uniqExact(account_id) AS members_sharing,
    any(size) AS cluster_size,
    round(members_sharing / cluster_size, 2) AS share,
    arraySort(groupUniqArray(account_id)) AS members
FROM
(
    SELECT
        account_id,
        tupleElement(item, 1) AS facet,
        tupleElement(item, 2) AS value,
        (
            SELECT uniqExact(member) FROM {db}.alerts ARRAY JOIN accounts AS member
            WHERE subject_kind = 'cluster' AND subject_id = {cluster_id}
        ) AS size
    FROM {db}.account_scores
    ARRAY JOIN arrayConcat(
        arrayMap(x -> ('ip_prefix', x), ip_prefixes),
        arrayMap((a, u) -> ('asn_ua', concat(toString(a), ' | ', u)), asns, user_agents),
        arrayMap(x -> ('payment_fingerprint', x), payment_fingerprints),
        arrayMap(x -> ('template', x), top_templates)
    ) AS item
    WHERE account_id IN
    (
        SELECT arrayJoin(accounts) FROM {db}.alerts
        WHERE subject_kind = 'cluster' AND subject_id = {cluster_id}
    )
)
GROUP BY facet, value
HAVING members_sharing >= {min_members}
ORDER BY members_sharing DESC, facet, value
