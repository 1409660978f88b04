-- Months still filling in: per delivery month, the lines and events loaded so far (up to the
-- as-of date), how many lines the latest load brought, and whether the month is provisional
-- (SPEC §6: late billing, prescriptions reach tarification offices within about two months).
create or replace view mart_data_quality_months as
with months as (
    select * from core_months
),

lines as (
    select lines.*
    from stg_billing_lines as lines
    cross join stg_settings as settings
    where lines.delivery_date <= settings.as_of_date
),

latest_load as (
    select max(load_id) as load_id from lines
),

line_counts as (
    select
        lines.delivery_month_date as month_start_date,
        count(*)::integer as n_lines,
        count(distinct lines.load_id)::integer as n_loads,
        count(*) filter (where lines.load_id = latest_load.load_id)::integer
            as n_lines_latest_load
    from lines
    cross join latest_load
    group by lines.delivery_month_date
),

event_counts as (
    select
        delivery_month_date as month_start_date,
        count(*)::integer as n_events
    from core_events
    group by delivery_month_date
),

unmatched_counts as (
    select
        date_trunc('month', delivery_date)::date as month_start_date,
        count(*)::integer as n_unmatched_corrections
    from core_netted_lines
    where is_unmatched_correction
    group by all
),

described as (
    select
        months.month,
        months.month_start_date,
        months.as_of_date,
        months.is_provisional,
        months.final_from_date,
        coalesce(line_counts.n_lines, 0) as n_lines,
        coalesce(event_counts.n_events, 0) as n_events,
        coalesce(unmatched_counts.n_unmatched_corrections, 0) as n_unmatched_corrections,
        coalesce(line_counts.n_loads, 0) as n_loads,
        latest_load.load_id as latest_load_id,
        coalesce(line_counts.n_lines_latest_load, 0) as n_lines_latest_load
    from months
    cross join latest_load
    left join line_counts on line_counts.month_start_date = months.month_start_date
    left join event_counts on event_counts.month_start_date = months.month_start_date
    left join unmatched_counts on unmatched_counts.month_start_date = months.month_start_date
)

select * from described;
