-- Share completed over time since initiation (SPEC §5), per scheme: for d = 0, 10, ...,
-- max_programme_days, among the programmes started at least d days before the as-of date
-- (so that their first d days are fully observed), the share completed within d days of
-- their start.
create or replace view mart_completion_by_days_since_start as
with settings as (
    select as_of_date, max_programme_days from stg_settings
),

programmes as (
    select
        scheme,
        (settings.as_of_date - start_date)::integer as days_observed,
        (completed_date - start_date)::integer as days_to_completion
    from core_programmes
    cross join settings
),

days as (
    select unnest(range(0, settings.max_programme_days + 1, 10))::integer as days_since_start
    from settings
),

schemes as (
    select distinct scheme from programmes
),

grid as (
    select schemes.scheme, days.days_since_start
    from schemes
    cross join days
),

counted as (
    select
        grid.scheme,
        grid.days_since_start,
        count(programmes.scheme)::integer as n_programmes_observed,
        count(programmes.scheme) filter (
            where programmes.days_to_completion <= grid.days_since_start
        )::integer as n_completed_within
    from grid
    left join programmes
        on programmes.scheme = grid.scheme
        and programmes.days_observed >= grid.days_since_start
    group by grid.scheme, grid.days_since_start
),

shares as (
    select
        counted.*,
        round(n_completed_within / nullif(n_programmes_observed, 0), 4)::double
            as share_completed,
        settings.as_of_date
    from counted
    cross join settings
)

select * from shares;
