-- The months the monthly figures are computed for: from the earliest of the programme start,
-- the first delivery and the month asked for (report_month), to the latest of the as-of
-- month and the month asked for. For each month M: its cutoff E = min(last day of M, as-of)
-- (SPEC §5) and whether M is provisional (SPEC §6): as-of earlier than
-- last day of M + provisional_days.
create or replace view core_months as
with settings as (
    select * from stg_settings
),

bounds as (
    select
        date_trunc(
            'month',
            least(
                settings.programme_start_date,
                (select min(delivery_date) from stg_billing_lines),
                settings.report_month_date
            )
        )::date as first_month_date,
        date_trunc('month', greatest(settings.as_of_date, settings.report_month_date))::date
            as last_month_date
    from settings
    where settings.as_of_date is not null
),

months as (
    select unnest(generate_series(first_month_date, last_month_date, interval 1 month))::date
        as month_start_date
    from bounds
),

described as (
    select
        strftime(months.month_start_date, '%Y-%m') as month,
        months.month_start_date,
        last_day(months.month_start_date) as month_end_date,
        least(last_day(months.month_start_date), settings.as_of_date) as cutoff_date,
        settings.as_of_date,
        last_day(months.month_start_date) + settings.provisional_days as final_from_date,
        settings.as_of_date < last_day(months.month_start_date) + settings.provisional_days
            as is_provisional
    from months
    cross join settings
)

select * from described;
