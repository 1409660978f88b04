-- Events counted by delivery month and by the scheme of their programme (SPEC §6: a repeat
-- initiation counts under the scheme of the programme it belongs to); unassigned events
-- (no programme) in rows of their own (is_unassigned, scheme null). Shared by the monthly
-- state of play and the unassigned-events mart.
create or replace view core_monthly_events as
with events as (
    select * from core_programme_events
),

counted as (
    select
        delivery_month_date as month_start_date,
        programme_scheme as scheme,
        is_unassigned,
        count(*) filter (where kind = 'initiation')::integer as n_initiation_events,
        count(*) filter (where kind = 'reduction')::integer as n_reduction_events,
        count(*) filter (where kind = 'reduction' and capsules = 10)::integer
            as n_reduction_events_10_capsules,
        count(*) filter (where kind = 'reduction' and capsules = 20)::integer
            as n_reduction_events_20_capsules,
        count(*) filter (where kind = 'reduction' and capsules = 30)::integer
            as n_reduction_events_30_capsules,
        count(*) filter (where kind = 'stabilisation')::integer as n_stabilisation_events,
        count(*) filter (where kind = 'follow_up')::integer as n_follow_up_events,
        coalesce(sum(fee_eur), 0)::decimal(18, 2) as fees_estimated_eur
    from events
    group by delivery_month_date, programme_scheme, is_unassigned
)

select * from counted;
