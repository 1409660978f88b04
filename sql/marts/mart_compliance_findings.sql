-- SPEC §8: one row per flagged event and rule, over the events up to the as-of date. An event
-- can break several rules: it then has one row per rule. Each rule is one CTE below, named
-- after its id; the metric registry (sql/registry/rules/) points at these CTEs.
create or replace view mart_compliance_findings as
with settings as (
    select * from stg_settings
),

events as (
    select * from core_programme_events
),

first_initiations as (
    select
        patient_id,
        min(delivery_date) as first_initiation_date
    from events
    where kind = 'initiation'
    group by patient_id
),

r01_repeat_initiation as (
    -- Each initiation event of a patient after their first (one programme per patient).
    -- The repeat still opens a new programme (SPEC §5).
    select
        events.*,
        'R01' as rule_id,
        'initiation number ' || events.programme_number || ' of the patient (first on '
            || first_initiations.first_initiation_date || ')' as detail
    from events
    inner join first_initiations on first_initiations.patient_id = events.patient_id
    where events.kind = 'initiation'
        and events.programme_number > 1
),

r02_unassigned as (
    -- Each unassigned event: delivered before the patient's first initiation event, or the
    -- patient has no initiation event up to the as-of date.
    select
        events.*,
        'R02' as rule_id,
        case
            when first_initiations.first_initiation_date is null
                then events.kind || ' of a patient with no initiation interview'
            else events.kind || ' before the patient''s first initiation interview on '
                || first_initiations.first_initiation_date
        end as detail
    from events
    left join first_initiations on first_initiations.patient_id = events.patient_id
    where events.is_unassigned
),

r03_reduction_beyond_scheme as (
    -- Each reduction event numbered above the scheme's step count.
    select
        *,
        'R03' as rule_id,
        'reduction step ' || kind_number || ' in a ' || programme_scheme || '-step scheme'
            as detail
    from events
    where kind = 'reduction'
        and kind_number > programme_scheme
),

r04_third_stabilisation as (
    -- Each stabilisation event after the programme's second.
    select
        *,
        'R04' as rule_id,
        'stabilisation step ' || kind_number || ' (at most 2 per programme)' as detail
    from events
    where kind = 'stabilisation'
        and kind_number > 2
),

r05_second_follow_up as (
    -- Each follow_up event after the programme's first.
    select
        *,
        'R05' as rule_id,
        'follow-up interview ' || kind_number || ' (once per programme)' as detail
    from events
    where kind = 'follow_up'
        and kind_number > 1
),

r06_other_pharmacy as (
    -- Each programme event at another pharmacy than the initiating one.
    select
        *,
        'R06' as rule_id,
        kind || ' at pharmacy ' || pharmacy_id || ', programme initiated at pharmacy '
            || programme_pharmacy_id as detail
    from events
    where not is_unassigned
        and pharmacy_id <> programme_pharmacy_id
),

r07_after_max_days as (
    -- Each programme event more than max_programme_days (360) days after the programme
    -- start; day 360 itself is within the limit.
    select
        events.*,
        'R07' as rule_id,
        events.kind || ' on day ' || events.days_since_start || ' after the start on '
            || events.programme_start_date || ' (limit ' || settings.max_programme_days
            || ' days)' as detail
    from events
    cross join settings
    where not events.is_unassigned
        and events.days_since_start > settings.max_programme_days
),

r08_steps_after_reduction as (
    -- Input of R08: reduction/stabilisation events whose previous step is a reduction, with
    -- that step's end (delivery date + capsules - 1) and how far back the rule looks.
    select
        events.*,
        events.previous_step_delivery_date + (events.previous_step_capsules - 1)
            as previous_step_end_date,
        settings.early_delivery_working_days
    from events
    cross join settings
    where events.is_step
        and events.previous_step_kind = 'reduction'
),

r08_earliest_dates as (
    -- The earliest allowed date: the end stepped back one day at a time, skipping non-working
    -- days, n times, i.e. the n-th working day before the end. With w the number of working
    -- days up to the day before the end, it is the working day numbered w - (n - 1).
    select
        steps.*,
        day_before_end.working_day_number - (steps.early_delivery_working_days - 1)
            as earliest_working_day_number
    from r08_steps_after_reduction as steps
    inner join core_calendar as day_before_end
        on day_before_end.calendar_date = steps.previous_step_end_date - 1
),

r08_early_delivery as (
    -- Each reduction or stabilisation event delivered before the earliest allowed date, when
    -- the programme's previous reduction/stabilisation event is a reduction. A delivery on
    -- the earliest date is allowed.
    select
        steps.* exclude (
            previous_step_end_date, early_delivery_working_days, earliest_working_day_number
        ),
        'R08' as rule_id,
        steps.kind || ' delivered ' || steps.delivery_date || ', earliest allowed '
            || earliest_day.calendar_date || ' (previous reduction step of '
            || steps.previous_step_capsules || ' capsules delivered '
            || steps.previous_step_delivery_date || ' ends ' || steps.previous_step_end_date
            || ')' as detail
    from r08_earliest_dates as steps
    inner join core_calendar as earliest_day
        on earliest_day.working_day_number = steps.earliest_working_day_number
        and earliest_day.is_working_day
    where steps.delivery_date < earliest_day.calendar_date
),

r09_stabilisation_after_stabilisation as (
    -- Each stabilisation event whose previous reduction/stabilisation event is a
    -- stabilisation (after a stabilisation comes a reduction step).
    select
        *,
        'R09' as rule_id,
        'stabilisation step right after the stabilisation step delivered '
            || previous_step_delivery_date as detail
    from events
    where kind = 'stabilisation'
        and previous_step_kind = 'stabilisation'
),

r10_stabilisation_before_reduction as (
    -- Each stabilisation event with no reduction event before it in the programme.
    select
        *,
        'R10' as rule_id,
        'stabilisation step with no reduction step before it in the programme' as detail
    from events
    where kind = 'stabilisation'
        and not is_unassigned
        and n_prior_reductions = 0
),

r11_before_programme_start as (
    -- Each event (assigned or not) dated before programme_start (2023-02-01 by default).
    select
        events.*,
        'R11' as rule_id,
        events.kind || ' delivered ' || events.delivery_date || ', before the programme start '
            || settings.programme_start_date as detail
    from events
    cross join settings
    where events.delivery_date < settings.programme_start_date
),

findings as (
    select * from r01_repeat_initiation
    union all by name select * from r02_unassigned
    union all by name select * from r03_reduction_beyond_scheme
    union all by name select * from r04_third_stabilisation
    union all by name select * from r05_second_follow_up
    union all by name select * from r06_other_pharmacy
    union all by name select * from r07_after_max_days
    union all by name select * from r08_early_delivery
    union all by name select * from r09_stabilisation_after_stabilisation
    union all by name select * from r10_stabilisation_before_reduction
    union all by name select * from r11_before_programme_start
),

described as (
    select
        rule_id,
        event_id,
        programme_id,
        patient_id,
        patient_event_number,
        pharmacy_id,
        delivery_date,
        cnk,
        kind,
        detail
    from findings
)

select * from described;
