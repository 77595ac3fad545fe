-- Daily active users (DAU) over the newest 30 days in Gold, with a 7-day moving average.
-- Day = DATE(event_time) in UTC; DAU = distinct user_id that day. The moving average covers the
-- days with events among the 7 calendar days ending that day.
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
WITH daily AS (
  SELECT
    event_date,
    active_users,
    ROUND(
      AVG(active_users) OVER (ORDER BY UNIX_DATE(event_date) RANGE BETWEEN 6 PRECEDING AND CURRENT ROW),
      1
    ) AS active_users_7d_avg,
    sessions,
    events
  FROM gold.daily_kpis
)
SELECT event_date, active_users, active_users_7d_avg, sessions, events
FROM daily
WHERE event_date > (SELECT DATE_SUB(MAX(event_date), 30) FROM gold.daily_kpis)
ORDER BY event_date
