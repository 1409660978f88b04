-- The load ledger: one row per file accepted into the warehouse (with the session variable
-- max_load_id set, only the loads up to that id).
create or replace view stg_loads as
with source as (
    select loads.*
    from loads
    where getvariable('max_load_id') is null
        or loads.load_id <= getvariable('max_load_id')::integer
),

renamed as (
    select
        load_id,
        file_name,
        file_sha256,
        rows_read as n_rows_read,
        rows_new as n_rows_new,
        rows_present as n_rows_present,
        rows_skipped as n_rows_skipped,
        rows_rejected as n_rows_rejected,
        min_delivery_date,
        max_delivery_date,
        started_at,
        finished_at
    from source
)

select * from renamed;
