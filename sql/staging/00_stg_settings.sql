-- The settings every view computes with, in one row: the as-of date and the configuration
-- values (SPEC §11) that etl.base.warehouse.apply_settings sets as session variables.
-- The as-of date defaults to the latest delivery date loaded (SPEC §5).
-- max_load_id (null: every load) makes the views see only the lines of loads up to that id:
-- the warehouse as it was after that load (report packs reproduced, revisions).
-- vintage_date (null: every line) makes them see only the lines known on or before it
-- (SPEC §15, see stg_billing_lines); the default as-of date is then the latest delivery
-- date among those lines.
create or replace view stg_settings as
with variables as (
    select
        getvariable('as_of_date')::date as requested_as_of_date,
        getvariable('grace_days')::integer as grace_days,
        getvariable('stabilisation_days')::integer as stabilisation_days,
        getvariable('max_programme_days')::integer as max_programme_days,
        getvariable('early_delivery_working_days')::integer as early_delivery_working_days,
        getvariable('programme_start')::date as programme_start_date,
        getvariable('structural_start')::date as structural_start_date,
        getvariable('provisional_days')::integer as provisional_days,
        getvariable('suppression_threshold')::integer as suppression_threshold,
        getvariable('interview_coefficient')::decimal(10, 4) as interview_coefficient,
        getvariable('preparation_coefficient')::decimal(10, 4) as preparation_coefficient,
        -- Set by the report command so that the month spine reaches the month asked for.
        getvariable('report_month')::date as report_month_date,
        getvariable('max_load_id')::integer as max_load_id,
        getvariable('vintage_date')::date as vintage_date,
        -- Set while a report pack is written: archived packs issued before it (lower id) count
        -- as "first reported" in its revision table; null: every archived pack.
        getvariable('report_id')::integer as report_id
),

latest_delivery as (
    select max(lines.delivery_date) as latest_delivery_date
    from billing_lines as lines
    left join loads on loads.load_id = lines.load_id
    cross join variables
    where (variables.max_load_id is null or lines.load_id <= variables.max_load_id)
        and (
            variables.vintage_date is null
            or last_day(strptime(
                coalesce(lines.billing_month, strftime(loads.started_at, '%Y-%m')) || '-01',
                '%Y-%m-%d'
            )::date) <= variables.vintage_date
        )
),

resolved as (
    select
        coalesce(variables.requested_as_of_date, latest_delivery.latest_delivery_date)
            as as_of_date,
        latest_delivery.latest_delivery_date,
        variables.* exclude (requested_as_of_date)
    from variables
    cross join latest_delivery
)

select * from resolved;
