-- SPEC §2: estimated fees per CNK and delivery month, over all events up to the as-of date
-- (programme and unassigned events), beside the amounts billed on the lines when the export
-- has them. One row per month x CNK (zeros included).
create or replace view mart_fees_by_cnk_month as
with months as (
    select * from core_months
),

codes as (
    select * from stg_fee_codes
),

events as (
    select
        delivery_month_date as month_start_date,
        cnk,
        count(*)::integer as n_events,
        count(*) filter (where is_unassigned)::integer as n_unassigned_events,
        coalesce(sum(fee_eur), 0)::decimal(18, 2) as fees_estimated_eur
    from core_programme_events
    group by delivery_month_date, cnk
),

billed as (
    select
        lines.delivery_month_date as month_start_date,
        lines.cnk,
        sum(lines.amount_eur)::decimal(18, 2) as amount_billed_eur
    from stg_billing_lines as lines
    cross join stg_settings as settings
    where lines.delivery_date <= settings.as_of_date
    group by lines.delivery_month_date, lines.cnk
),

grid as (
    select
        months.month,
        months.month_start_date,
        months.is_provisional,
        codes.cnk,
        codes.kind,
        codes.scheme,
        codes.capsules,
        codes.coefficient_name,
        coalesce(events.n_events, 0) as n_events,
        coalesce(events.n_unassigned_events, 0) as n_unassigned_events,
        coalesce(events.fees_estimated_eur, 0)::decimal(18, 2) as fees_estimated_eur,
        billed.amount_billed_eur
    from months
    cross join codes
    left join events
        on events.month_start_date = months.month_start_date
        and events.cnk = codes.cnk
    left join billed
        on billed.month_start_date = months.month_start_date
        and billed.cnk = codes.cnk
)

select * from grid;
