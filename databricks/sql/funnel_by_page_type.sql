-- Daily funnel by page type over the newest 7 days in Gold: sessions by the type of the page they entered
-- on (gold.dim_page.page_type of gold.sessions.entry_page), and how many of them clicked, added to the cart
-- and purchased, with the share that purchased. A session counts on the day it started (UTC).
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
SELECT
  s.session_date,
  d.day_name,
  p.page_type AS entry_page_type,
  COUNT(*) AS sessions,
  COUNT_IF(s.clicks > 0) AS sessions_with_click,
  COUNT_IF(s.add_to_carts > 0) AS sessions_with_add_to_cart,
  COUNT_IF(s.converted) AS converted_sessions,
  ROUND(COUNT_IF(s.converted) / COUNT(*), 4) AS conversion_rate
FROM gold.sessions AS s
JOIN gold.dim_page AS p ON p.page = s.entry_page
JOIN gold.dim_date AS d ON d.date = s.session_date
WHERE s.session_date > (SELECT DATE_SUB(MAX(session_date), 7) FROM gold.sessions)
GROUP BY s.session_date, d.day_name, p.page_type
ORDER BY s.session_date, sessions DESC, entry_page_type
