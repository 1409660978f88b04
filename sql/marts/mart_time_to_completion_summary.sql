-- Time from initiation to completion (SPEC §5), summarised per scheme: the number of
-- completed programmes and the quartiles of their days to completion.
create or replace view mart_time_to_completion_summary as
with completed as (
    select
        scheme,
        (completed_date - start_date)::integer as days_to_completion,
        as_of_date
    from core_programmes
    where is_completed
),

summarised as (
    select
        scheme,
        count(*)::integer as n_completed,
        min(days_to_completion)::integer as min_days,
        round(quantile_cont(days_to_completion, 0.25), 1)::double as p25_days,
        round(quantile_cont(days_to_completion, 0.5), 1)::double as median_days,
        round(quantile_cont(days_to_completion, 0.75), 1)::double as p75_days,
        max(days_to_completion)::integer as max_days,
        round(avg(days_to_completion), 1)::double as mean_days,
        any_value(as_of_date) as as_of_date
    from completed
    group by scheme
)

select * from summarised;
