-- SPEC §6: events of the month delivered before the patient's first initiation (unassigned,
-- rule R02), reported apart from the schemes and not in 'total'. One row per month.
create or replace view mart_unassigned_by_month as
with months as (
    select * from core_months
),

unassigned as (
    select * from core_monthly_events where is_unassigned
),

monthly as (
    select
        months.month,
        months.month_start_date,
        months.as_of_date,
        months.is_provisional,
        coalesce(unassigned.n_reduction_events, 0) as reduction_steps_delivered,
        coalesce(unassigned.n_reduction_events_10_capsules, 0) as reduction_steps_10_capsules,
        coalesce(unassigned.n_reduction_events_20_capsules, 0) as reduction_steps_20_capsules,
        coalesce(unassigned.n_reduction_events_30_capsules, 0) as reduction_steps_30_capsules,
        coalesce(unassigned.n_stabilisation_events, 0) as stabilisation_steps_delivered,
        coalesce(unassigned.n_follow_up_events, 0) as follow_up_interviews,
        coalesce(unassigned.fees_estimated_eur, 0)::decimal(18, 2) as fees_estimated_eur
    from months
    left join unassigned on unassigned.month_start_date = months.month_start_date
)

select * from monthly;
