-- New and returning users per day over the newest 30 days in Gold. A user is new on the day of their first
-- event ever (gold.customer_features.first_seen) and returning on every later day they are active; active
-- users are the distinct user_id of gold.fact_events that day (the DAU of gold.daily_kpis).
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
WITH active AS (
  SELECT DISTINCT event_date, user_id
  FROM gold.fact_events
  WHERE event_date > (SELECT DATE_SUB(MAX(event_date), 30) FROM gold.fact_events)
)
SELECT
  a.event_date,
  COUNT(*) AS active_users,
  COUNT_IF(TO_DATE(c.first_seen) = a.event_date) AS new_users,
  COUNT_IF(TO_DATE(c.first_seen) < a.event_date) AS returning_users,
  ROUND(COUNT_IF(TO_DATE(c.first_seen) < a.event_date) / COUNT(*), 4) AS returning_share
FROM active AS a
JOIN gold.customer_features AS c ON c.user_id = a.user_id
GROUP BY a.event_date
ORDER BY a.event_date
