-- Traffic by device type and country over the newest 7 days in Gold; a missing dimension is 'unknown'.
-- active_user_days adds up each day's distinct users (a user active on 3 days counts 3 times).
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
SELECT
  device_type,
  country,
  SUM(events) AS events,
  SUM(active_users) AS active_user_days,
  ROUND(SUM(events) / SUM(SUM(events)) OVER (), 4) AS share_of_events
FROM gold.traffic_daily
WHERE event_date > (SELECT DATE_SUB(MAX(event_date), 7) FROM gold.traffic_daily)
GROUP BY device_type, country
ORDER BY events DESC, device_type, country
