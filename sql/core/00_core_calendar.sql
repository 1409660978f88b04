-- Working days ("jours ouvrables", SPEC §8): Monday to Saturday, except Belgian public
-- holidays. One row per day from 2020-01-01 (the loader's earliest date) to the end of the
-- last year of the holiday table. working_day_number counts the working days up to and
-- including the day, so stepping back n working days is a lookup, not a loop.
create or replace view core_calendar as
with bounds as (
    select
        date '2020-01-01' as first_date,
        make_date(max(year(holiday_date)), 12, 31) as last_date
    from stg_public_holidays
),

days as (
    select unnest(generate_series(first_date, last_date, interval 1 day))::date as calendar_date
    from bounds
),

flagged as (
    select
        days.calendar_date,
        isodow(days.calendar_date) as iso_day_of_week,
        holidays.holiday_name,
        holidays.holiday_date is not null as is_public_holiday,
        isodow(days.calendar_date) <> 7 and holidays.holiday_date is null as is_working_day
    from days
    left join stg_public_holidays as holidays on holidays.holiday_date = days.calendar_date
),

numbered as (
    select
        *,
        sum(case when is_working_day then 1 else 0 end) over (
            order by calendar_date rows between unbounded preceding and current row
        )::integer as working_day_number
    from flagged
)

select * from numbered;
