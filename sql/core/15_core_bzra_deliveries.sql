-- SPEC §14, BZRA deliveries: the BZRA lines up to the as-of date netted like programme lines
-- (§4.1) per (patient, pharmacy, delivery date, CNK); each group with a positive net quantity is
-- one delivery, whatever the quantity, its ATC the largest non-empty ATC among its lines.
-- Clonazepam (N03AE01) is outside the BZRA groups: shown apart, never a delivery here.
create or replace view core_bzra_deliveries as
with settings as (
    select as_of_date from stg_settings
),

lines_as_of as (
    select lines.*
    from stg_bzra_lines as lines
    cross join settings
    where lines.is_bzra
        and lines.delivery_date <= settings.as_of_date
),

netted as (
    select
        patient_id,
        pharmacy_id,
        delivery_date,
        cnk,
        sum(quantity)::integer as net_quantity,
        max(nullif(trim(atc), '')) as atc
    from lines_as_of
    group by patient_id, pharmacy_id, delivery_date, cnk
),

deliveries as (
    select
        patient_id || '/' || pharmacy_id || '/' || delivery_date::varchar || '/' || cnk
            as delivery_id,
        patient_id,
        pharmacy_id,
        delivery_date,
        cnk,
        atc,
        net_quantity
    from netted
    where net_quantity > 0
)

select * from deliveries;
