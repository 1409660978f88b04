-- Regional spread (the commission's evaluations): per region (from the initiating pharmacy's
-- postcode, see core_programme_profiles) and scheme (5, 7, 10 and 'total'), the patients who
-- initiated a programme (by their first initiation, as in SPEC §6), the programmes by outcome
-- as of the as-of date, and the patients per 100,000 adult inhabitants (the region's adults
-- aged 18 and over, the sum of its provinces' in stg_ref_adult_population). Every region has a
-- row, and an 'unknown' region gathers missing or unreadable postcodes (no population, no rate).
create or replace view mart_programmes_by_region as
with adults as (
    select
        provinces.region_code,
        sum(population.adult_population)::integer as adult_population,
        any_value(population.population_date) as population_date,
        any_value(population.population_source) as population_source
    from (select distinct province_code, region_code from stg_ref_provinces) as provinces
    inner join stg_ref_adult_population as population
        on population.province_code = provinces.province_code
    group by provinces.region_code
),

regions as (
    select
        regions.region_code,
        regions.region_order,
        regions.region_name_fr,
        regions.region_name_nl,
        regions.region_name_en,
        adults.adult_population,
        adults.population_date,
        adults.population_source
    from stg_ref_regions as regions
    left join adults on adults.region_code = regions.region_code
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
        adult_population,
        population_date,
        population_source,
        round(n_patients_initiated::bigint * 100000 / adult_population, 2)::double
            as patients_initiated_per_100000_adults,
        (select as_of_date from stg_settings) as as_of_date
    from combined
)

select * from rated;
