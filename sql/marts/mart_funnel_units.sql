-- SPEC §16 funnel plots: per measure and unit, the cases (denominator) and the events
-- (numerator) that etl/outcomes.py sets against the national value with control limits.
-- - completion: closed programmes (completed or stopped as of the as-of date) / of which
--   completed;
-- - early_delivery: reduction events of programmes / of which flagged R08
--   (mart_compliance_findings).
-- A unit is the programme's pharmacy (the pharmacy of its opening initiation), or the province
-- or region of that pharmacy's postcode (core_programme_profiles; 'unknown' when missing or
-- unreadable). Only units with at least one case have a row.
create or replace view mart_funnel_units as
with programmes as (
    select programme_id, pharmacy_id, province_code, region_code, is_completed, is_stopped
    from core_programme_profiles
),

early_findings as (
    select distinct event_id
    from mart_compliance_findings
    where rule_id = 'R08' and kind = 'reduction'
),

reductions as (
    select
        events.programme_id,
        early_findings.event_id is not null as is_early
    from core_programme_events as events
    left join early_findings on early_findings.event_id = events.event_id
    where events.kind = 'reduction' and not events.is_unassigned
),

cases as (
    select
        'completion' as measure,
        programme_id,
        is_completed as is_event
    from programmes
    where is_completed or is_stopped
    union all
    select 'early_delivery', programme_id, is_early
    from reductions
),

placed as (
    select
        cases.measure,
        cases.is_event,
        programmes.pharmacy_id,
        programmes.province_code,
        programmes.region_code
    from cases
    inner join programmes on programmes.programme_id = cases.programme_id
),

long as (
    select measure, 'pharmacy' as unit_type, pharmacy_id as unit_code, is_event from placed
    union all
    select measure, 'province', province_code, is_event from placed
    union all
    select measure, 'region', region_code, is_event from placed
),

counted as (
    select
        measure,
        unit_type,
        unit_code,
        count(*)::integer as n_cases,
        count(*) filter (where is_event)::integer as n_events
    from long
    group by measure, unit_type, unit_code
),

province_names as (
    select distinct province_code, province_name_fr, province_name_nl, province_name_en
    from stg_ref_provinces
),

named as (
    select
        counted.measure,
        counted.unit_type,
        counted.unit_code,
        coalesce(province_names.province_name_fr, regions.region_name_fr) as unit_name_fr,
        coalesce(province_names.province_name_nl, regions.region_name_nl) as unit_name_nl,
        coalesce(province_names.province_name_en, regions.region_name_en) as unit_name_en,
        counted.unit_code = 'unknown' and counted.unit_type <> 'pharmacy' as is_unknown_place,
        counted.n_cases,
        counted.n_events,
        (select as_of_date from stg_settings) as as_of_date
    from counted
    left join province_names
        on counted.unit_type = 'province' and province_names.province_code = counted.unit_code
    left join stg_ref_regions as regions
        on counted.unit_type = 'region' and regions.region_code = counted.unit_code
)

select * from named;
