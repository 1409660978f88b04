-- SPEC §6, the monthly state of play: one row per month x scheme (5, 7, 10 and 'total', the
-- sum of the three), from the events of the month up to the as-of date. Every per-scheme
-- figure counts programmes, and the events that belong to them, by the programme's scheme.
-- Unassigned events are not here (see mart_unassigned_by_month).
-- fees_flagged_eur reads the error findings of mart_compliance_findings: the fees of the
-- events an error rule flags and of every event of a repeat programme, each event once.
create or replace view mart_state_of_play as
with months as (
    select * from core_months
),

schemes as (
    select scheme from stg_fee_codes where kind = 'initiation'
),

grid as (
    select
        months.*,
        schemes.scheme
    from months
    cross join schemes
),

monthly_events as (
    select * from core_monthly_events where not is_unassigned
),

programmes as not materialized (
    -- (not materialized: a pass-through, not a copy of every programme)
    select * from core_programmes
),

starts as (
    -- Patients with a programme that starts in the month (a patient with two programmes of
    -- one scheme starting in a month counts once), of whom those whose programme is a repeat
    -- programme; programmes started (for the active programmes); first programmes (for the
    -- cumulative patients, by the scheme of their first programme).
    select
        start_month_date as month_start_date,
        scheme,
        count(distinct patient_id)::integer as patients_initiated,
        count(distinct patient_id) filter (where is_repeat_programme)::integer
            as patients_initiated_repeat,
        count(*)::integer as n_programmes_started,
        count(*) filter (where programme_number = 1)::integer as n_first_programmes_started
    from programmes
    group by start_month_date, scheme
),

error_findings as (
    -- (read below as a semi-join: the hash table is built on the findings, not on the events)
    select distinct event_id from mart_compliance_findings where severity = 'error'
),

flagged_fees as (
    select
        events.delivery_month_date as month_start_date,
        events.programme_scheme as scheme,
        coalesce(sum(events.fee_eur), 0)::decimal(18, 2) as fees_flagged_eur
    from core_programme_events as events
    where not events.is_unassigned
        and (
            events.is_repeat_programme
            or events.event_id in (select error_findings.event_id from error_findings)
        )
    group by events.delivery_month_date, events.programme_scheme
),

completions as (
    select
        date_trunc('month', completed_date)::date as month_start_date,
        scheme,
        count(*)::integer as programmes_completed
    from programmes
    where completed_date is not null
    group by all
),

stops as (
    select
        date_trunc('month', stop_date)::date as month_start_date,
        scheme,
        count(*)::integer as programmes_stopped
    from programmes
    where stop_date is not null
    group by all
),

monthly as (
    select
        grid.month,
        grid.month_start_date,
        grid.month_end_date,
        grid.cutoff_date,
        grid.as_of_date,
        grid.is_provisional,
        grid.scheme,
        coalesce(starts.patients_initiated, 0) as patients_initiated,
        coalesce(starts.patients_initiated_repeat, 0) as patients_initiated_repeat,
        coalesce(monthly_events.n_initiation_events, 0) as initiations_billed,
        coalesce(monthly_events.n_reduction_events, 0) as reduction_steps_delivered,
        coalesce(monthly_events.n_reduction_events_10_capsules, 0)
            as reduction_steps_10_capsules,
        coalesce(monthly_events.n_reduction_events_20_capsules, 0)
            as reduction_steps_20_capsules,
        coalesce(monthly_events.n_reduction_events_30_capsules, 0)
            as reduction_steps_30_capsules,
        coalesce(monthly_events.n_stabilisation_events, 0) as stabilisation_steps_delivered,
        coalesce(monthly_events.n_follow_up_events, 0) as follow_up_interviews,
        coalesce(completions.programmes_completed, 0) as programmes_completed,
        coalesce(stops.programmes_stopped, 0) as programmes_stopped,
        coalesce(starts.n_programmes_started, 0) as n_programmes_started,
        coalesce(starts.n_first_programmes_started, 0) as n_first_programmes_started,
        coalesce(monthly_events.fees_estimated_eur, 0)::decimal(18, 2) as fees_estimated_eur,
        coalesce(flagged_fees.fees_flagged_eur, 0)::decimal(18, 2) as fees_flagged_eur
    from grid
    left join monthly_events
        on monthly_events.month_start_date = grid.month_start_date
        and monthly_events.scheme = grid.scheme
    left join starts
        on starts.month_start_date = grid.month_start_date
        and starts.scheme = grid.scheme
    left join completions
        on completions.month_start_date = grid.month_start_date
        and completions.scheme = grid.scheme
    left join stops
        on stops.month_start_date = grid.month_start_date
        and stops.scheme = grid.scheme
    left join flagged_fees
        on flagged_fees.month_start_date = grid.month_start_date
        and flagged_fees.scheme = grid.scheme
),

running as (
    -- Every date counted here is on or before the as-of date (stop dates even before it), so
    -- "on or before E = min(last day of M, as-of)" is "in a month up to M": running sums over
    -- the months give the cumulative patients and the programmes active at the end of M
    -- (started up to E, minus those completed or stopped up to E; a programme ends on or after
    -- its start).
    select
        *,
        sum(n_first_programmes_started) over scheme_months as n_patients_initiated_up_to_month,
        sum(n_programmes_started) over scheme_months
            - sum(programmes_completed + programmes_stopped) over scheme_months
            as n_programmes_active
    from monthly
    window scheme_months as (
        partition by scheme
        order by month_start_date
        rows between unbounded preceding and current row
    )
),

per_scheme as (
    select
        month,
        month_start_date,
        month_end_date,
        cutoff_date,
        as_of_date,
        is_provisional,
        scheme::varchar as scheme,
        row_number() over (partition by month_start_date order by scheme)::integer
            as scheme_order,
        patients_initiated,
        patients_initiated_repeat,
        initiations_billed,
        n_patients_initiated_up_to_month::integer as patients_initiated_cumulative,
        n_programmes_active::integer as active_programmes_end_of_month,
        reduction_steps_delivered,
        reduction_steps_10_capsules,
        reduction_steps_20_capsules,
        reduction_steps_30_capsules,
        stabilisation_steps_delivered,
        follow_up_interviews,
        programmes_completed,
        programmes_stopped,
        fees_estimated_eur,
        fees_flagged_eur
    from running
),

totals as (
    select
        month,
        month_start_date,
        month_end_date,
        cutoff_date,
        as_of_date,
        is_provisional,
        'total' as scheme,
        max(scheme_order) + 1 as scheme_order,
        sum(patients_initiated)::integer as patients_initiated,
        sum(patients_initiated_repeat)::integer as patients_initiated_repeat,
        sum(initiations_billed)::integer as initiations_billed,
        sum(patients_initiated_cumulative)::integer as patients_initiated_cumulative,
        sum(active_programmes_end_of_month)::integer as active_programmes_end_of_month,
        sum(reduction_steps_delivered)::integer as reduction_steps_delivered,
        sum(reduction_steps_10_capsules)::integer as reduction_steps_10_capsules,
        sum(reduction_steps_20_capsules)::integer as reduction_steps_20_capsules,
        sum(reduction_steps_30_capsules)::integer as reduction_steps_30_capsules,
        sum(stabilisation_steps_delivered)::integer as stabilisation_steps_delivered,
        sum(follow_up_interviews)::integer as follow_up_interviews,
        sum(programmes_completed)::integer as programmes_completed,
        sum(programmes_stopped)::integer as programmes_stopped,
        sum(fees_estimated_eur)::decimal(18, 2) as fees_estimated_eur,
        sum(fees_flagged_eur)::decimal(18, 2) as fees_flagged_eur
    from per_scheme
    group by month, month_start_date, month_end_date, cutoff_date, as_of_date, is_provisional
),

combined as (
    select * from per_scheme
    union all by name
    select * from totals
)

select * from combined;
