-- Session conversion per day over the newest 30 days in Gold: sessions with a purchase / sessions,
-- plus the same rate over the 7 calendar days ending that day (ratio of sums, not a mean of rates).
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
WITH daily AS (
  SELECT
    event_date,
    sessions,
    converted_sessions,
    conversion_rate,
    add_to_carts,
    purchases,
    ROUND(
      SUM(converted_sessions) OVER (ORDER BY UNIX_DATE(event_date) RANGE BETWEEN 6 PRECEDING AND CURRENT ROW)
        / NULLIF(SUM(sessions) OVER (ORDER BY UNIX_DATE(event_date) RANGE BETWEEN 6 PRECEDING AND CURRENT ROW), 0),
      4
    ) AS conversion_rate_7d
  FROM gold.daily_kpis
)
SELECT event_date, sessions, converted_sessions, conversion_rate, conversion_rate_7d, add_to_carts, purchases
FROM daily
WHERE event_date > (SELECT DATE_SUB(MAX(event_date), 30) FROM gold.daily_kpis)
ORDER BY event_date
