-- The loaded BZRA lines (raw table bzra_lines, SPEC §14): benzodiazepine and Z-drug lines (ATC
-- under N05BA, N05CD, N05CF) and clonazepam lines (N03AE01, kept apart), one row per line, all
-- dates. With the session variable max_load_id set, only the lines of loads up to that id.
create or replace view stg_bzra_lines as
with source as (
    select bzra_lines.*
    from bzra_lines
    where getvariable('max_load_id') is null
        or bzra_lines.load_id <= getvariable('max_load_id')::integer
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
    from source
)

select * from renamed;
