-- Programme counts per category of each breakdown the evaluations use (region, province,
-- age_band, sex, insurer, from core_programme_profiles) and per scheme, with a 'total' row per
-- category (the three schemes together). Only categories that have programmes have rows; the
-- marts add the zero rows of their reference lists. Patients are counted at their first
-- programme (as patients_initiated_cumulative, SPEC §6); programmes by their status as of the
-- as-of date.
create or replace view core_programme_counts_by_category as
with programmes as (
    select * from core_programme_profiles
),

long as (
    select 'region' as dimension, region_code as category, * from programmes
    union all
    select 'province', province_code, * from programmes
    union all
    select 'age_band', age_band, * from programmes
    union all
    select 'sex', patient_sex, * from programmes
    union all
    select 'insurer', insurer_code, * from programmes
),

counted as (
    select
        dimension,
        category,
        coalesce(scheme::varchar, 'total') as scheme,
        count(*) filter (where is_first_programme)::integer as n_patients_initiated,
        count(*)::integer as n_programmes,
        count(*) filter (where is_in_progress)::integer as n_in_progress,
        count(*) filter (where is_completed)::integer as n_completed,
        count(*) filter (where is_stopped)::integer as n_stopped
    from long
    group by grouping sets ((dimension, category, scheme), (dimension, category))
)

select * from counted;
