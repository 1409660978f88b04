-- SPEC §5: the days a patient's programmes start. Walking a patient's events in the order of
-- SPEC §4.3, an initiation event on day d OPENS a programme unless the patient's programme
-- opened last is RUNNING on d:
--   - not completed before d: its reduction number `scheme` was not delivered before d;
--   - and not stopped by d: the stop rule of core_programmes applied with d as the as-of
--     date, to the programme's reduction and stabilisation events before this initiation
--     (running while d <= covered_until + grace_days, or, with no such event yet,
--     d <= start + grace_days).
-- An initiation while a programme runs is a REPEAT INITIATION of that programme: it opens
-- nothing (rule R01). Every event belongs to the programme opened last before it.
--
-- Only the day of an initiation matters. In the order of SPEC §4.3 initiations come first on
-- their day, so the events before an initiation on d are the events of earlier days and the
-- initiations of d before it; if the first initiation of d opens a programme, the others of
-- that day find it running (started on d, nothing before them): a programme starts on a day,
-- with every initiation of that day in it. Its scheme and pharmacy are those of the LAST
-- initiation event of the day, its opening initiation is the FIRST one.
--
-- The rule is sequential (whether d opens depends on where the running programme started),
-- so it is computed in three steps and a short recursion:
-- 1. initiation_days: one row per patient and day with an initiation.
-- 2. running_pairs: for every two initiation days s < d of a patient, whether a programme
--    started on s still runs on d, judged on the reduction and stabilisation events delivered
--    in [s, d) (a step on s comes after the initiations of s, one on d after those of d). The
--    coverage of those steps uses the closed form of core_programme_events: covered_until =
--    (sum of the durations up to the last step) - 1 + max over the steps of (delivery_date -
--    sum of the durations before the step), the sums counted from any fixed origin.
--    next_openings: for each s, the first later initiation day on which a programme started
--    on s no longer runs (between s and that day it runs, so every step in [s, d) of that
--    pair is one of its steps).
-- 3. openings (recursive): a patient's first initiation day opens programme 1; programme
--    n + 1 starts on the next opening of programme n's start day. A patient has as many
--    rounds as programmes (one or two, rarely more).
--
-- The rule is a table macro over a relation of unit events (one row per event, as
-- core_events) so that mart_state_of_play_revisions applies the same rule to the lines
-- earlier loads held, as they were. The relation needs: patient_id (one patient's sequence
-- of events; the revisions prefix it with the report they recompute), patient_event_number
-- (the order of SPEC §4.3), delivery_date, kind, scheme, pharmacy_id and capsules.
-- core_programme_openings is the macro over core_events: the programmes as of the as-of date.
create or replace macro programme_openings(unit_events) as table
with recursive settings as (
    select grace_days, stabilisation_days from stg_settings
),

events as (
    select
        patient_id,
        patient_event_number,
        delivery_date,
        kind,
        scheme,
        pharmacy_id,
        capsules
    from query_table(unit_events)
    where kind in ('initiation', 'reduction', 'stabilisation')
),

initiation_days as (
    select
        patient_id,
        delivery_date as initiation_date,
        min(patient_event_number) as opening_event_number,
        arg_max(scheme, patient_event_number) as scheme,
        arg_max(pharmacy_id, patient_event_number) as pharmacy_id
    from events
    where kind = 'initiation'
    group by patient_id, delivery_date
),

steps as (
    -- Reduction and stabilisation events with the patient's running sum of their durations.
    select
        events.patient_id,
        events.delivery_date,
        events.kind,
        sum(
            case events.kind
                when 'reduction' then events.capsules
                else settings.stabilisation_days
            end
        ) over (
            partition by events.patient_id
            order by events.patient_event_number
            rows between unbounded preceding and current row
        ) as step_days_through,
        case events.kind
            when 'reduction' then events.capsules
            else settings.stabilisation_days
        end as duration_days
    from events
    cross join settings
    where events.kind in ('reduction', 'stabilisation')
),

pairs as (
    -- Every initiation day s (a possible start) with every later initiation day d.
    select
        starts.patient_id,
        starts.initiation_date as start_date,
        starts.scheme,
        later.initiation_date as next_initiation_date
    from initiation_days as starts
    inner join initiation_days as later
        on later.patient_id = starts.patient_id
        and later.initiation_date > starts.initiation_date
),

pair_steps as (
    -- The steps a programme started on s has before the initiations of d.
    select
        pairs.patient_id,
        pairs.start_date,
        pairs.scheme,
        pairs.next_initiation_date,
        count(steps.kind) filter (where steps.kind = 'reduction') as n_reductions,
        max(steps.delivery_date - (steps.step_days_through - steps.duration_days)::integer)
            + (max(steps.step_days_through)::integer - 1) as covered_until_date
    from pairs
    left join steps
        on steps.patient_id = pairs.patient_id
        and steps.delivery_date >= pairs.start_date
        and steps.delivery_date < pairs.next_initiation_date
    group by pairs.patient_id, pairs.start_date, pairs.scheme, pairs.next_initiation_date
),

running_pairs as (
    select
        pair_steps.*,
        case
            when pair_steps.n_reductions >= pair_steps.scheme then false  -- completed before d
            when pair_steps.covered_until_date is null
                then pair_steps.next_initiation_date <= pair_steps.start_date + settings.grace_days
            else pair_steps.next_initiation_date
                <= pair_steps.covered_until_date + settings.grace_days
        end as is_running
    from pair_steps
    cross join settings
),

next_openings as (
    select
        patient_id,
        start_date,
        min(next_initiation_date) filter (where not is_running) as next_opening_date
    from running_pairs
    group by patient_id, start_date
),

openings as (
    select
        patient_id,
        1 as programme_number,
        min(initiation_date) as start_date
    from initiation_days
    group by patient_id
    union all
    select
        openings.patient_id,
        openings.programme_number + 1 as programme_number,
        next_openings.next_opening_date as start_date
    from openings
    inner join next_openings
        on next_openings.patient_id = openings.patient_id
        and next_openings.start_date = openings.start_date
    where next_openings.next_opening_date is not null
),

described as (
    select
        openings.patient_id,
        openings.programme_number::integer as programme_number,
        openings.start_date,
        lead(openings.start_date) over (
            partition by openings.patient_id order by openings.programme_number
        ) as next_start_date,
        initiation_days.scheme,
        initiation_days.pharmacy_id,
        initiation_days.opening_event_number
    from openings
    inner join initiation_days
        on initiation_days.patient_id = openings.patient_id
        and initiation_days.initiation_date = openings.start_date
)

select * from described;

create or replace view core_programme_openings as
select * from programme_openings('core_events');
