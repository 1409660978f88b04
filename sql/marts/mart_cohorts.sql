-- SPEC §7, cohort outcomes: programmes grouped by start month and scheme, as of the as-of
-- date. Rates are fractions rounded to 4 decimals, null when the denominator is 0.
-- stabilisation_rate: "of those" (SPEC v2 §7): its numerator counts only programmes of its
-- denominator (with a reduction step), so it cannot exceed 1.
create or replace view mart_cohorts as
with programmes as (
    select
        *,
        n_reduction_events > 0 as has_reduction,
        n_stabilisation_events > 0 as has_stabilisation,
        n_follow_up_events > 0 as has_follow_up,
        is_completed or is_stopped as is_closed
    from core_programmes
),

grouped as (
    select
        strftime(start_month_date, '%Y-%m') as initiation_month,
        start_month_date,
        scheme,
        count(*)::integer as programmes,
        count(*) filter (where is_completed)::integer as completed,
        count(*) filter (where is_stopped)::integer as stopped,
        count(*) filter (where is_in_progress)::integer as in_progress,
        count(*) filter (where is_closed)::integer as n_closed,
        count(*) filter (where has_reduction)::integer as n_with_reduction,
        count(*) filter (where has_reduction and has_stabilisation)::integer
            as n_with_reduction_and_stabilisation,
        count(*) filter (where is_closed and has_follow_up)::integer as n_closed_with_follow_up,
        any_value(as_of_date) as as_of_date
    from programmes
    group by start_month_date, scheme
),

rated as (
    select
        *,
        round(completed / nullif(completed + stopped, 0), 4)::double as completion_rate,
        round(n_with_reduction_and_stabilisation / nullif(n_with_reduction, 0), 4)::double
            as stabilisation_rate,
        round(n_closed_with_follow_up / nullif(n_closed, 0), 4)::double as follow_up_rate
    from grouped
)

select * from rated;
