-- The loaded programme billing lines (raw table billing_lines), one row per line, all dates.
-- The as-of filter is applied once, in core_netted_lines. With the session variable
-- max_load_id set, only the lines of loads up to that id (the warehouse as it was then).
create or replace view stg_billing_lines as
with source as (
    select billing_lines.*
    from billing_lines
    where getvariable('max_load_id') is null
        or billing_lines.load_id <= getvariable('max_load_id')::integer
),

renamed as (
    select
        fingerprint,
        occurrence,
        load_id,
        line_number,
        patient_id,
        pharmacy_id,
        delivery_date,
        date_trunc('month', delivery_date)::date as delivery_month_date,
        cnk,
        quantity,
        amount_eur,
        billing_month,
        insurer_code,
        patient_birth_year,
        patient_sex,
        pharmacy_postcode,
        prescriber_id
    from source
)

select * from renamed;
