-- Time from initiation to completion (SPEC §5): for completed programmes, the days from the
-- start (initiation interview) to the completion date (the scheme's last reduction step),
-- counted per scheme in 10-day bins.
create or replace view mart_time_to_completion as
with completed as (
    select
        scheme,
        (completed_date - start_date)::integer as days_to_completion,
        as_of_date
    from core_programmes
    where is_completed
),

binned as (
    select
        scheme,
        (days_to_completion // 10 * 10)::integer as days_from,
        (days_to_completion // 10 * 10 + 9)::integer as days_to,
        as_of_date
    from completed
),

counted as (
    select
        scheme,
        days_from,
        days_to,
        count(*)::integer as n_completed,
        any_value(as_of_date) as as_of_date
    from binned
    group by scheme, days_from, days_to
)

select * from counted;
