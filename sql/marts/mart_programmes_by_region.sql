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
    select * from core_schemes
),

counted as (
    select * from core_programme_counts_by_category where dimension = 'region'
),

combined as (
    select
        regions.*,
        schemes.scheme,
        schemes.scheme_order,
        coalesce(counted.n_patients_initiated, 0) as n_patients_initiated,
        coalesce(counted.n_programmes, 0) as n_programmes,
        coalesce(counted.n_in_progress, 0) as n_in_progress,
        coalesce(counted.n_completed, 0) as n_completed,
        coalesce(counted.n_stopped, 0) as n_stopped
    from regions
    cross join schemes
    left join counted
        on counted.category = regions.region_code
        and counted.scheme = schemes.scheme
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
        round(n_patients_initiated::bigint * 100000 / population, 2)::double
            as patients_initiated_per_100000,
        (select as_of_date from stg_settings) as as_of_date
    from combined
)

select * from rated;
