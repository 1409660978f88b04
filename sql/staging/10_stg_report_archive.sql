-- The report archive (raw table report_archive): one row per report pack issued.
create or replace view stg_report_archive as
with source as (
    select * from report_archive
),

renamed as (
    select
        report_id,
        month as report_month,
        strptime(month, '%Y-%m')::date as report_month_date,
        as_of_date,
        lang,
        format,
        suppressed as is_suppressed,
        max_load_id,
        load_ids,
        config,
        content_sha256,
        issued_at,
        issued_by
    from source
)

select * from renamed;
