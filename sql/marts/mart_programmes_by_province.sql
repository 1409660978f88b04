-- Regional spread by province (the Brussels-Capital Region, which has no province, is a row of
-- its own): per province and scheme (5, 7, 10 and 'total'), the patients who initiated a
-- programme (first initiation) and the programmes by outcome as of the as-of date, from the
-- initiating pharmacy's postcode (core_programme_profiles), and the patients per 100,000
-- adult inhabitants (stg_ref_adult_population). Every province has a row; an 'unknown' row
-- gathers missing or unreadable postcodes (no population, no rate).
create or replace view mart_programmes_by_province as
with provinces as (
    select distinct
        provinces.province_code,
        provinces.province_order,
        provinces.province_name_fr,
        provinces.province_name_nl,
        provinces.province_name_en,
        provinces.region_code,
        regions.region_name_fr,
        regions.region_name_nl,
        regions.region_name_en,
        population.adult_population,
        population.population_date,
        population.population_source
    from stg_ref_provinces as provinces
    inner join stg_ref_regions as regions on regions.region_code = provinces.region_code
    left join stg_ref_adult_population as population
        on population.province_code = provinces.province_code
    union all
    select 'unknown', 99, 'inconnue', 'onbekend', 'unknown', 'unknown', 'inconnue', 'onbekend',
        'unknown', null, null, null
),

schemes as (
    select * from core_schemes
),

counted as (
    select * from core_programme_counts_by_category where dimension = 'province'
),

combined as (
    select
        provinces.*,
        schemes.scheme,
        schemes.scheme_order,
        coalesce(counted.n_patients_initiated, 0) as n_patients_initiated,
        coalesce(counted.n_programmes, 0) as n_programmes,
        coalesce(counted.n_in_progress, 0) as n_in_progress,
        coalesce(counted.n_completed, 0) as n_completed,
        coalesce(counted.n_stopped, 0) as n_stopped
    from provinces
    cross join schemes
    left join counted
        on counted.category = provinces.province_code
        and counted.scheme = schemes.scheme
),

stamped as (
    select
        province_code,
        province_order,
        province_name_fr,
        province_name_nl,
        province_name_en,
        region_code,
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
        adult_population,
        population_date,
        population_source,
        round(n_patients_initiated::bigint * 100000 / adult_population, 2)::double
            as patients_initiated_per_100000_adults,
        (select as_of_date from stg_settings) as as_of_date
    from combined
)

select * from stamped;
