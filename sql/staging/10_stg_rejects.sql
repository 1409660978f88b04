-- Rows that failed a row check at loading (SPEC §3), with the reason code.
create or replace view stg_rejects as
with source as (
    select * from rejects
),

renamed as (
    select
        load_id,
        file_name,
        line_number,
        reason,
        detail,
        raw_values
    from source
)

select * from renamed;
