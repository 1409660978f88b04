-- SPEC §15: the figures of the reporting triangle for every delivery month, as known at the
-- session's vintage (stg_billing_lines sees only the lines known on or before vintage_date;
-- null: every line loaded). One row per delivery month x scheme (5, 7, 10 and 'total', their
-- sum), with the same definitions as mart_state_of_play (SPEC §6): programme starts
-- (patients_initiated), reduction steps and estimated fees of the events that belong to a
-- programme, counted by the programme's scheme. The reporting triangle is this mart read at
-- the vintages ending month m, m + 1, m + 2, ... (etl/nowcast.py, `reporting_triangle`):
-- the cell of lag k is the figure at the vintage ending month m + k minus the figure at the
-- vintage ending month m + k - 1.
create or replace view mart_vintage_figures as
with settings as (
    select as_of_date, vintage_date from stg_settings
),

months as (
    select month, month_start_date from core_months
),

schemes as (
    select scheme, scheme_order from core_schemes where scheme <> 'total'
),

starts as (
    select
        start_month_date as month_start_date,
        scheme::varchar as scheme,
        count(distinct patient_id)::integer as patients_initiated
    from core_programmes
    group by all
),

events as (
    select
        month_start_date,
        scheme::varchar as scheme,
        n_reduction_events,
        fees_estimated_eur
    from core_monthly_events
    where not is_unassigned
),

per_scheme as (
    select
        months.month,
        months.month_start_date,
        schemes.scheme,
        schemes.scheme_order,
        coalesce(starts.patients_initiated, 0)::integer as patients_initiated,
        coalesce(events.n_reduction_events, 0)::integer as reduction_steps_delivered,
        coalesce(events.fees_estimated_eur, 0)::decimal(18, 2) as fees_estimated_eur
    from months
    cross join schemes
    left join starts
        on starts.month_start_date = months.month_start_date
        and starts.scheme = schemes.scheme
    left join events
        on events.month_start_date = months.month_start_date
        and events.scheme = schemes.scheme
),

totals as (
    select
        month,
        month_start_date,
        'total' as scheme,
        max(scheme_order) + 1 as scheme_order,
        sum(patients_initiated)::integer as patients_initiated,
        sum(reduction_steps_delivered)::integer as reduction_steps_delivered,
        sum(fees_estimated_eur)::decimal(18, 2) as fees_estimated_eur
    from per_scheme
    group by month, month_start_date
),

combined as (
    select
        figures.*,
        settings.vintage_date,
        settings.as_of_date
    from (
        select * from per_scheme
        union all by name
        select * from totals
    ) as figures
    cross join settings
)

select * from combined;
