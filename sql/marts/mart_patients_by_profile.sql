-- Who starts a programme (the commission's evaluations): per profile dimension (age band at
-- the initiation, sex, insurer) and scheme (5, 7, 10 and 'total'), the patients who initiated
-- a programme (first initiation, as in SPEC §6) and the programmes by outcome as of the as-of
-- date, from the programme's initiation line (core_programme_profiles). Age bands and sexes
-- always have a row (zeros included), insurers those present, and every dimension an 'unknown'
-- row. is_dimension_in_export says whether any initiation line carries the value at all.
create or replace view mart_patients_by_profile as
with counted as (
    select * from core_programme_counts_by_category
    where dimension in ('age_band', 'sex', 'insurer')
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
    select 'insurer', category, row_number() over (order by category)::integer
    from counted
    where dimension = 'insurer' and scheme = 'total' and category <> 'unknown'
),

dimensions as (
    select
        dimension,
        bool_or(category <> 'unknown') as is_dimension_in_export
    from counted
    group by dimension
),

schemes as (
    select * from core_schemes
),

combined as (
    select
        categories.dimension,
        categories.category,
        categories.category_order,
        schemes.scheme,
        schemes.scheme_order,
        coalesce(counted.n_patients_initiated, 0) as n_patients_initiated,
        coalesce(counted.n_programmes, 0) as n_programmes,
        coalesce(counted.n_in_progress, 0) as n_in_progress,
        coalesce(counted.n_completed, 0) as n_completed,
        coalesce(counted.n_stopped, 0) as n_stopped
    from categories
    cross join schemes
    left join counted
        on counted.dimension = categories.dimension
        and counted.category = categories.category
        and counted.scheme = schemes.scheme
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
