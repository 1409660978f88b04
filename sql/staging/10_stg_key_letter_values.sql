-- The key-letter value P by period (SPEC §2): each row is valid from its date until the day
-- before the next row's. Read from the session variable key_letter_values.
create or replace view stg_key_letter_values as
with source as (
    select unnest(
        getvariable('key_letter_values')::struct(valid_from date, value decimal(10, 4))[]
    ) as key_letter_row
),

typed as (
    select
        key_letter_row.valid_from as valid_from_date,
        key_letter_row.value as key_letter_value
    from source
),

periods as (
    select
        valid_from_date,
        lead(valid_from_date) over (order by valid_from_date) - 1 as valid_until_date,
        key_letter_value
    from typed
)

select * from periods;
