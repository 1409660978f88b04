-- Regional spread (the commission's evaluations): per region (from the initiating pharmacy's
-- postcode, see core_programme_profiles) and scheme (5, 7, 10 and 'total'), the patients who
-- initiated a programme (by their first initiation, as in SPEC §6), the programmes by outcome
-- as of the as-of date, and the patients per 100,000 inhabitants (Statbel population on
-- 1 January 2024, stg_ref_regions). Every region has a row, and an 'unknown' region gathers
-- missing or unreadable postcodes (no population, no rate).
create or replace view mart_programmes_by_region as
with regions as (
    select
        region_code,
        region_order,
        region_name_fr,
        region_name_nl,
        region_name_en,
        population,
        population_date,
        population_source
    from stg_ref_regions
    union all
    select 'unknown', 99, 'inconnue', 'onbekend', 'unknown', null, null, null
),

schemes as (
    select scheme from stg_fee_codes where kind = 'initiation'
),

grid as (
    select regions.*, schemes.scheme
    from regions
    cross join schemes
),

programmes as (
    select * from core_programme_profiles
),

counted as (
    select
        region_code,
        scheme,
        count(*) filter (where is_first_programme)::integer as n_patients_initiated,
        count(*)::integer as n_programmes,
        count(*) filter (where is_in_progress)::integer as n_in_progress,
        count(*) filter (where is_completed)::integer as n_completed,
        count(*) filter (where is_stopped)::integer as n_stopped
    from programmes
    group by region_code, scheme
),

per_scheme as (
    select
        grid.* exclude (scheme),
        grid.scheme::varchar as scheme,
        row_number() over (partition by grid.region_code order by grid.scheme)::integer
            as scheme_order,
        coalesce(counted.n_patients_initiated, 0) as n_patients_initiated,
        coalesce(counted.n_programmes, 0) as n_programmes,
        coalesce(counted.n_in_progress, 0) as n_in_progress,
        coalesce(counted.n_completed, 0) as n_completed,
        coalesce(counted.n_stopped, 0) as n_stopped
    from grid
    left join counted
        on counted.region_code = grid.region_code
        and counted.scheme = grid.scheme
),

totals as (
    select
        region_code,
        region_order,
        region_name_fr,
        region_name_nl,
        region_name_en,
        population,
        population_date,
        population_source,
        'total' as scheme,
        max(scheme_order) + 1 as scheme_order,
        sum(n_patients_initiated)::integer as n_patients_initiated,
        sum(n_programmes)::integer as n_programmes,
        sum(n_in_progress)::integer as n_in_progress,
        sum(n_completed)::integer as n_completed,
        sum(n_stopped)::integer as n_stopped
    from per_scheme
    group by all
),

combined as (
    select * from per_scheme
    union all by name
    select * from totals
),

rated as (
    select
        region_code,
        region_order,
        region_name_fr,
        region_name_nl,
        region_name_en,
        scheme,
        scheme_order,
        n_patients_initiated,
        n_programmes,
        n_in_progress,
        n_completed,
        n_stopped,
        population,
        population_date,
        population_source,
        round(n_patients_initiated * 100000 / population, 2)::double
            as patients_initiated_per_100000,
        (select as_of_date from stg_settings) as as_of_date
    from combined
)

select * from rated;
