-- Top 20 pages by views over the newest 7 days in Gold.
-- viewer_days adds up each day's distinct viewers (a user viewing on 3 days counts 3 times).
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
SELECT
  RANK() OVER (ORDER BY SUM(views) DESC) AS page_rank,
  page,
  SUM(views) AS views,
  SUM(unique_users) AS viewer_days,
  ROUND(SUM(views) / NULLIF(SUM(unique_users), 0), 2) AS views_per_viewer_day
FROM gold.top_pages_daily
WHERE event_date > (SELECT DATE_SUB(MAX(event_date), 7) FROM gold.top_pages_daily)
GROUP BY page
ORDER BY views DESC, page
LIMIT 20
