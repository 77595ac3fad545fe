-- Funnel per day over the newest 7 days in Gold: sessions reaching each step
-- (view -> click -> add_to_cart -> purchase), as a share of the day's first step and of the step before.
-- A step counts sessions with at least one event of that action that day, so shares can exceed 1
-- when sessions skip a step.
-- Tables are named gold.<table>: select the lakehouse catalog first (USE CATALOG clickstream).
SELECT
  event_date,
  step_order,
  step,
  sessions,
  ROUND(sessions / NULLIF(FIRST_VALUE(sessions) OVER (PARTITION BY event_date ORDER BY step_order), 0), 4)
    AS share_of_first_step,
  ROUND(sessions / NULLIF(LAG(sessions) OVER (PARTITION BY event_date ORDER BY step_order), 0), 4)
    AS share_of_previous_step
FROM gold.funnel_daily
WHERE event_date > (SELECT DATE_SUB(MAX(event_date), 7) FROM gold.funnel_daily)
ORDER BY event_date, step_order
