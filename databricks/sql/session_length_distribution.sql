-- Distribution of session lengths over the sessions that started in the newest 7 days in Gold: sessions per
-- length band (seconds from a session's first to its last event; a single-event session lasts 0 s), their
-- share, mean events and conversion rate.
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
WITH banded AS (
  SELECT
    CASE
      WHEN duration_s = 0 THEN 1
      WHEN duration_s < 30 THEN 2
      WHEN duration_s < 60 THEN 3
      WHEN duration_s < 300 THEN 4
      WHEN duration_s < 900 THEN 5
      WHEN duration_s < 1800 THEN 6
      WHEN duration_s < 3600 THEN 7
      ELSE 8
    END AS band_order,
    events,
    converted
  FROM gold.sessions
  WHERE session_date > (SELECT DATE_SUB(MAX(session_date), 7) FROM gold.sessions)
)
SELECT
  band_order,
  ELEMENT_AT(
    ARRAY('single event', 'under 30 s', '30 s - 1 min', '1 - 5 min', '5 - 15 min', '15 - 30 min', '30 - 60 min', '1 h or more'),
    band_order
  ) AS length_band,
  COUNT(*) AS sessions,
  ROUND(COUNT(*) / SUM(COUNT(*)) OVER (), 4) AS share_of_sessions,
  ROUND(AVG(events), 2) AS avg_events,
  ROUND(COUNT_IF(converted) / COUNT(*), 4) AS conversion_rate
FROM banded
GROUP BY band_order
ORDER BY band_order
