-- Question: which accounts moved to a newly released model right after its release?
--
-- A model is "new" when it first appears in the population more than
-- settle_hours after the data starts (the first minute any account used it
-- is its release). For each new model and each account active before the
-- release, the account's traffic in the window_hours after the release: how
-- much of it touched the new model and how its rate changed. Listed: accounts
-- with at least min_before events before the release whose share of minutes-
-- weighted traffic on the new model reached min_share, biggest movers first.
-- Distillers (model hoppers) move early, almost entirely, and speed up.
--
-- @param window_hours UInt32 = 24  hours after the release that are looked at
-- @param min_share Float64 = 0.5  least share of post-release events in minutes using the new model
-- @param min_before UInt32 = 20  least events before the release (the account existed and moved)
-- @param settle_hours UInt32 = 1  models first seen within this many hours of the data start are not new
--
-- Output columns:
--   account_id       the account
--   model            the new model
--   released         first minute the model appears in the population (UTC)
--   first_use        first minute the account used it (UTC)
--   hours_to_adopt   hours from release to the account's first use
--   events_before    account's events before the release
--   events_after     account's events in the window after the release
--   events_on_model  of those, events in minutes that used the new model
--   share_on_model   events_on_model / events_after
--   rate_before      events per active minute before the release
--   rate_after       events per active minute (on the new model) after the release
--   rate_ratio       rate_after / rate_before
SELECT
    account_id,
    new_model AS model,
    release_minute AS released,
    first_use,
    round((first_use - release_minute) / 3600, 2) AS hours_to_adopt,
    events_before,
    events_after,
    events_on_model,
    round(events_on_model / events_after, 3) AS share_on_model,
    round(rate_before, 2) AS rate_before,
    round(rate_after, 2) AS rate_after,
    round(rate_after / rate_before, 2) AS rate_ratio
FROM
(
    SELECT
        account_id,
        tupleElement(release, 1) AS new_model,
        tupleElement(release, 2) AS release_minute,
        minIf(minute, has(models, new_model)) AS first_use,
        sumIf(events, minute < release_minute) AS events_before,
        sumIf(events, minute >= release_minute AND minute < release_minute + 3600 * {window_hours})
            AS events_after,
        sumIf(events, has(models, new_model)
                      AND minute >= release_minute AND minute < release_minute + 3600 * {window_hours})
            AS events_on_model,
        events_before / greatest(1, countIf(minute < release_minute)) AS rate_before,
        events_on_model / greatest(1, countIf(has(models, new_model)
            AND minute >= release_minute AND minute < release_minute + 3600 * {window_hours})) AS rate_after
    FROM {db}.account_minute_v
    ARRAY JOIN
    (
        SELECT groupArray((model, first_minute))
        FROM
        (
            SELECT m AS model, min(minute) AS first_minute
            FROM {db}.account_minute_v
            ARRAY JOIN models AS m
            GROUP BY m
            HAVING first_minute > (SELECT min(minute) FROM {db}.account_minute) + 3600 * {settle_hours}
        )
    ) AS release
    GROUP BY account_id, release
)
WHERE events_before >= {min_before} AND events_after > 0 AND events_on_model / events_after >= {min_share}
ORDER BY events_on_model DESC, account_id
