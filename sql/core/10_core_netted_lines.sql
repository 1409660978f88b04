-- SPEC §4.1: billing lines up to the as-of date, netted per (patient, pharmacy, delivery
-- date, CNK). Corrections are negative lines; a negative net is an "unmatched correction"
-- (a data-quality finding), a zero net makes no event, a positive net makes one event a unit.
-- A value "of an event" (SPEC §8: patient_birth_year, prescriber_id) is the largest non-empty
-- value among the lines of its group, the lines netted into it (corrections included).
create or replace view core_netted_lines as
with settings as (
    select as_of_date from stg_settings
),

lines_as_of as (
    select lines.*
    from stg_billing_lines as lines
    cross join settings
    where lines.delivery_date <= settings.as_of_date
),

netted as (
    select
        patient_id,
        pharmacy_id,
        delivery_date,
        cnk,
        sum(quantity)::integer as net_quantity,
        count(*)::integer as n_lines,
        count(*) filter (where quantity < 0)::integer as n_correction_lines,
        max(patient_birth_year) as patient_birth_year,
        max(nullif(trim(prescriber_id), '')) as prescriber_id
    from lines_as_of
    group by patient_id, pharmacy_id, delivery_date, cnk
),

classified as (
    select
        *,
        net_quantity < 0 as is_unmatched_correction
    from netted
)

select * from classified;
