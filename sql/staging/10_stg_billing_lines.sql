-- The loaded programme billing lines (raw table billing_lines), one row per line, all dates.
-- The as-of filter is applied once, in core_netted_lines. With the session variable
-- max_load_id set, only the lines of loads up to that id (the warehouse as it was then).
-- SPEC §15, vintages: a line is known from the last day of its billing month, or, without
-- one, from the last day of the month its file was loaded (then that month is its billing
-- month: known_billing_month). With the session variable vintage_date set, only the lines
-- known on or before it (the figures as known on that date); null: every line loaded.
create or replace view stg_billing_lines as
with source as (
    select billing_lines.*
    from billing_lines
    where getvariable('max_load_id') is null
        or billing_lines.load_id <= getvariable('max_load_id')::integer
),

known as (
    select
        source.*,
        coalesce(source.billing_month, strftime(loads.started_at, '%Y-%m')) as known_billing_month
    from source
    left join loads on loads.load_id = source.load_id
),

dated as (
    select
        *,
        last_day(strptime(known_billing_month || '-01', '%Y-%m-%d')::date) as known_date
    from known
),

vintaged as (
    select *
    from dated
    where getvariable('vintage_date') is null
        or known_date <= getvariable('vintage_date')::date
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
        known_billing_month,
        known_date,
        insurer_code,
        patient_birth_year,
        patient_sex,
        pharmacy_postcode,
        prescriber_id
    from vintaged
)

select * from renamed;
