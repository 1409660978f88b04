-- SPEC §16: the input of the cumulative incidence of completion and of stop (Aalen-Johansen,
-- completion and stop as competing events), one row per programme as of the as-of date:
-- the time from its start to its outcome, or to the last day its status is known.
-- - completed: completion date - start date;
-- - stopped: stop date - start date (SPEC §5: the stop date is covered_until, or the start
--   when the programme has no reduction or stabilisation event);
-- - in progress: censored at min(as-of, covered_until) - start date, the last day its status is
--   known (covered_until taken as the start when it has none: its stop date would be the
--   start, as in SPEC §14's T).
-- etl/outcomes.py fits the estimator on these rows; nothing is re-derived in Python.
create or replace view mart_outcome_times as
with programmes as (
    select * from core_programmes
),

timed as (
    select
        programme_id,
        scheme,
        start_date,
        year(start_date)::integer as start_year,
        status,
        case status
            when 'completed' then 'completion'
            when 'stopped' then 'stop'
            else 'censored'
        end as outcome_event,
        case status
            when 'completed' then completed_date
            when 'stopped' then stop_date
            else least(as_of_date, coalesce(covered_until_date, start_date))
        end as outcome_date,
        as_of_date
    from programmes
),

measured as (
    select
        programme_id,
        scheme,
        start_date,
        start_year,
        status,
        outcome_event,
        outcome_date,
        (outcome_date - start_date)::integer as days_since_start,
        as_of_date
    from timed
)

select * from measured;
