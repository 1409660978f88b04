-- SPEC v2 §14: BZRA-free at 90, 180 and 365 days after the programme, per scheme and start
-- year, for the completed programmes and for all closed (completed or stopped) programmes:
-- the outcomes page shows both. One row per (start year, scheme, programmes group, N). A rate
-- with no observable programme is null ("not observable"), never 0; rounded like SPEC §7.
create or replace view mart_bzra_free as
with programmes as (
    select * from core_programme_bzra where is_closed
),

horizons as (
    select unnest([90, 180, 365]) as days
),

judged as (
    select
        year(programmes.start_date)::integer as start_year,
        programmes.scheme,
        programmes.is_completed,
        horizons.days,
        case horizons.days
            when 90 then programmes.is_free_90d_observable
            when 180 then programmes.is_free_180d_observable
            else programmes.is_free_365d_observable
        end as is_observable,
        case horizons.days
            when 90 then programmes.is_bzra_free_90d
            when 180 then programmes.is_bzra_free_180d
            else programmes.is_bzra_free_365d
        end as is_bzra_free
    from programmes
    cross join horizons
),

grouped as (
    select
        start_year,
        scheme,
        group_name as programmes_group,
        days,
        count(*)::integer as programmes,
        count(*) filter (where is_observable)::integer as observable,
        count(*) filter (where is_bzra_free)::integer as n_bzra_free
    from judged
    cross join (select unnest(['completed', 'closed']) as group_name) as groups
    where groups.group_name = 'closed' or judged.is_completed
    group by start_year, scheme, group_name, days
),

rated as (
    select
        start_year,
        scheme,
        programmes_group,
        days,
        programmes,
        observable,
        case when observable > 0 then n_bzra_free end as bzra_free,
        round(n_bzra_free / nullif(observable, 0), 4)::double as bzra_free_rate
    from grouped
)

select * from rated;
