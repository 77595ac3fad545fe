-- Events per minute and action over the newest 3 hours in Gold
-- (1-minute tumbling windows of event_time, UTC; late events included).
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
SELECT
  window_start,
  window_end,
  action,
  events
FROM gold.events_per_minute
WHERE window_start >= (SELECT MAX(window_start) - INTERVAL 3 HOURS FROM gold.events_per_minute)
ORDER BY window_start, action
