-- Belgian public holidays (reference table written by etl.base.warehouse).
create or replace view stg_public_holidays as
with source as (
    select * from belgian_public_holidays
),

renamed as (
    select
        holiday_date,
        name as holiday_name
    from source
)

select * from renamed;
