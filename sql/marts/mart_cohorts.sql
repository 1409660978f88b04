-- SPEC §7, cohort outcomes: programmes grouped by start month and scheme, as of the as-of
-- date. Rates are fractions rounded to 4 decimals, null when the denominator is 0.
-- stabilisation_rate: "of those" (SPEC v2 §7): its numerator counts only programmes of its
-- denominator (with a reduction step), so it cannot exceed 1.
-- SPEC v2 §14, §10: per N in 90/180/365, of the completed programmes, those observable at N
-- days (core_programme_bzra), of which BZRA-free, and the rate; the last two null when none is
-- observable ("not observable", never 0).
create or replace view mart_cohorts as
with programmes as (
    select
        core_programmes.*,
        core_programmes.n_reduction_events > 0 as has_reduction,
        core_programmes.n_stabilisation_events > 0 as has_stabilisation,
        core_programmes.n_follow_up_events > 0 as has_follow_up,
        core_programmes.is_completed or core_programmes.is_stopped as is_closed,
        bzra.is_free_90d_observable,
        bzra.is_free_180d_observable,
        bzra.is_free_365d_observable,
        bzra.is_bzra_free_90d,
        bzra.is_bzra_free_180d,
        bzra.is_bzra_free_365d
    from core_programmes
    left join core_programme_bzra as bzra on bzra.programme_id = core_programmes.programme_id
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
        count(*) filter (where is_completed and is_free_90d_observable)::integer
            as bzra_free_90d_observable,
        count(*) filter (where is_completed and is_bzra_free_90d)::integer as n_bzra_free_90d,
        count(*) filter (where is_completed and is_free_180d_observable)::integer
            as bzra_free_180d_observable,
        count(*) filter (where is_completed and is_bzra_free_180d)::integer as n_bzra_free_180d,
        count(*) filter (where is_completed and is_free_365d_observable)::integer
            as bzra_free_365d_observable,
        count(*) filter (where is_completed and is_bzra_free_365d)::integer as n_bzra_free_365d,
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
        round(n_closed_with_follow_up / nullif(n_closed, 0), 4)::double as follow_up_rate,
        case when bzra_free_90d_observable > 0 then n_bzra_free_90d end as bzra_free_90d,
        round(n_bzra_free_90d / nullif(bzra_free_90d_observable, 0), 4)::double
            as bzra_free_90d_rate,
        case when bzra_free_180d_observable > 0 then n_bzra_free_180d end as bzra_free_180d,
        round(n_bzra_free_180d / nullif(bzra_free_180d_observable, 0), 4)::double
            as bzra_free_180d_rate,
        case when bzra_free_365d_observable > 0 then n_bzra_free_365d end as bzra_free_365d,
        round(n_bzra_free_365d / nullif(bzra_free_365d_observable, 0), 4)::double
            as bzra_free_365d_rate
    from grouped
)

select * exclude (n_bzra_free_90d, n_bzra_free_180d, n_bzra_free_365d) from rated;
