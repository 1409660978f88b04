-- Who starts a programme (the commission's evaluations): per profile dimension (age band at
-- the initiation, sex, insurer) and scheme (5, 7, 10 and 'total'), the patients who initiated
-- a programme (first initiation, as in SPEC §6) and the programmes by outcome as of the as-of
-- date, from the programme's initiation line (core_programme_profiles). Age bands and sexes
-- always have a row (zeros included), insurers those present, and every dimension an 'unknown'
-- row. is_dimension_in_export says whether any initiation line carries the value at all.
create or replace view mart_patients_by_profile as
with programmes as (
    select * from core_programme_profiles
),

long as (
    select 'age_band' as dimension, age_band as category, * from programmes
    union all
    select 'sex', patient_sex, * from programmes
    union all
    select 'insurer', insurer_code, * from programmes
),

categories as (
    select * from (
        values
            ('age_band', '<45', 1), ('age_band', '45-64', 2), ('age_band', '65-74', 3),
            ('age_band', '75-84', 4), ('age_band', '85+', 5), ('age_band', 'unknown', 99),
            ('sex', 'F', 1), ('sex', 'M', 2), ('sex', 'unknown', 99),
            ('insurer', 'unknown', 99)
    ) as fixed (dimension, category, category_order)
    union all
    select 'insurer', insurer_code, row_number() over (order by insurer_code)::integer
    from (select distinct insurer_code from programmes where insurer_code <> 'unknown')
),

dimensions as (
    select
        dimension,
        bool_or(category <> 'unknown') as is_dimension_in_export
    from long
    group by dimension
),

schemes as (
    select scheme from stg_fee_codes where kind = 'initiation'
),

grid as (
    select
        categories.dimension,
        categories.category,
        categories.category_order,
        schemes.scheme
    from categories
    cross join schemes
),

counted as (
    select
        dimension,
        category,
        scheme,
        count(*) filter (where is_first_programme)::integer as n_patients_initiated,
        count(*)::integer as n_programmes,
        count(*) filter (where is_in_progress)::integer as n_in_progress,
        count(*) filter (where is_completed)::integer as n_completed,
        count(*) filter (where is_stopped)::integer as n_stopped
    from long
    group by dimension, category, scheme
),

per_scheme as (
    select
        grid.dimension,
        grid.category,
        grid.category_order,
        grid.scheme::varchar as scheme,
        row_number() over (
            partition by grid.dimension, grid.category order by grid.scheme
        )::integer as scheme_order,
        coalesce(counted.n_patients_initiated, 0) as n_patients_initiated,
        coalesce(counted.n_programmes, 0) as n_programmes,
        coalesce(counted.n_in_progress, 0) as n_in_progress,
        coalesce(counted.n_completed, 0) as n_completed,
        coalesce(counted.n_stopped, 0) as n_stopped
    from grid
    left join counted
        on counted.dimension = grid.dimension
        and counted.category = grid.category
        and counted.scheme = grid.scheme
),

totals as (
    select
        dimension,
        category,
        category_order,
        'total' as scheme,
        max(scheme_order) + 1 as scheme_order,
        sum(n_patients_initiated)::integer as n_patients_initiated,
        sum(n_programmes)::integer as n_programmes,
        sum(n_in_progress)::integer as n_in_progress,
        sum(n_completed)::integer as n_completed,
        sum(n_stopped)::integer as n_stopped
    from per_scheme
    group by dimension, category, category_order
),

combined as (
    select * from per_scheme
    union all by name
    select * from totals
),

flagged as (
    select
        combined.dimension,
        case combined.dimension when 'age_band' then 1 when 'sex' then 2 else 3 end
            as dimension_order,
        combined.category,
        combined.category_order,
        combined.scheme,
        combined.scheme_order,
        combined.n_patients_initiated,
        combined.n_programmes,
        combined.n_in_progress,
        combined.n_completed,
        combined.n_stopped,
        coalesce(dimensions.is_dimension_in_export, false) as is_dimension_in_export,
        (select as_of_date from stg_settings) as as_of_date
    from combined
    left join dimensions on dimensions.dimension = combined.dimension
)

select * from flagged;
