-- The loaded BZRA lines (raw table bzra_lines, SPEC §14): benzodiazepine and Z-drug lines (ATC
-- under N05BA, N05CD, N05CF) and clonazepam lines (N03AE01, kept apart), one row per line, all
-- dates. With the session variable max_load_id set, only the lines of loads up to that id.
-- SPEC §15, vintages: a BZRA line has no billing month, so it is known from the last day of
-- the month its file was loaded; with the session variable vintage_date set, only the lines
-- known on or before it (as stg_billing_lines does for programme lines).
create or replace view stg_bzra_lines as
with source as (
    select bzra_lines.*
    from bzra_lines
    where getvariable('max_load_id') is null
        or bzra_lines.load_id <= getvariable('max_load_id')::integer
),

vintaged as (
    select source.*
    from source
    left join loads on loads.load_id = source.load_id
    where getvariable('vintage_date') is null
        or last_day(loads.started_at::date) <= getvariable('vintage_date')::date
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
        cnk,
        atc,
        regexp_full_match(atc, 'N05(BA|CD|CF).*') as is_bzra,
        atc = 'N03AE01' as is_clonazepam,
        quantity
    from vintaged
)

select * from renamed;
