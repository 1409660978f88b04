-- How far programmes get (SPEC §5): per scheme, how many of the programmes started reach
-- reduction step k (their k-th reduction event), k = 1 .. the scheme's step count. Reaching
-- the last step is completion. Programmes still in progress may yet reach later steps.
create or replace view mart_programme_steps as
with programmes as (
    select scheme, n_reduction_events, is_in_progress, as_of_date from core_programmes
),

schemes as (
    select
        scheme,
        count(*)::integer as n_programmes,
        any_value(as_of_date) as as_of_date
    from programmes
    group by scheme
),

steps as (
    select
        schemes.scheme,
        step.step_number,
        schemes.n_programmes,
        schemes.as_of_date
    from schemes
    cross join lateral (select unnest(range(1, schemes.scheme + 1)) as step_number) as step
),

reaching as (
    select
        steps.scheme,
        steps.step_number,
        steps.step_number = steps.scheme as is_completion_step,
        steps.n_programmes,
        count(programmes.scheme)::integer as n_programmes_reaching,
        count(programmes.scheme) filter (where programmes.is_in_progress)::integer
            as n_in_progress_reaching,
        steps.as_of_date
    from steps
    left join programmes
        on programmes.scheme = steps.scheme
        and programmes.n_reduction_events >= steps.step_number
    group by steps.scheme, steps.step_number, steps.n_programmes, steps.as_of_date
),

shares as (
    select
        scheme,
        step_number,
        is_completion_step,
        n_programmes,
        n_programmes_reaching,
        n_in_progress_reaching,
        round(n_programmes_reaching / nullif(n_programmes, 0), 4)::double as share_of_started,
        as_of_date
    from reaching
)

select * from shares;
