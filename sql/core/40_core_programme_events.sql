-- SPEC §5: every event with its programme. Programmes start where core_programme_openings
-- says (an initiation opens a programme only when none is running; otherwise it is a repeat
-- initiation of the running one). Every event belongs to the patient's programme opened last
-- before it: since a programme opens with the first event of its start day, that is the
-- programme whose start date is the latest on or before the event's delivery date. Events
-- before the patient's first programme are unassigned (programme_number 0, no programme_id).
-- For reduction and stabilisation events (the programme's steps) also the coverage, the step
-- end of rules R07-R08 and the previous step, which core_programmes and rules R07-R10 read.
--
-- Coverage: a reduction covers its capsule count in days, a stabilisation stabilisation_days.
-- In event order: start_k = max(delivery_date_k, covered_until_(k-1) + 1) and
-- covered_until_k = start_k + d_k - 1. This recursion has a closed form, proved by induction
-- on k from covered_until_k = max(delivery_date_k + d_k - 1, covered_until_(k-1) + d_k):
--   covered_until_k = S_k - 1 + max over steps j <= k of (delivery_date_j - S_(j-1))
-- where S_k is the running sum of the durations. S may be counted from any fixed origin (the
-- origin cancels out), so the patient-level running sum serves every programme of the patient.
--
-- Step end (SPEC §8, R08): the same recursion over reduction events only, restarted after a
-- stabilisation: a reduction whose previous step is a reduction q starts on
-- max(delivery_date, step_end(q) + 1), any other reduction on its delivery date; step_end =
-- start + capsules - 1. A run of reductions is the reductions of a programme with the same
-- number of stabilisations before them, so the closed form above applies per run, with R the
-- patient-level running sum of reduction capsules.
create or replace view core_programme_events as
with settings as (
    select stabilisation_days from stg_settings
),

events as (
    select
        core_events.*,
        case core_events.kind
            when 'reduction' then core_events.capsules
            when 'stabilisation' then settings.stabilisation_days
        end as duration_days
    from core_events
    cross join settings
),

assigned_to_openings as (
    select
        events.*,
        coalesce(openings.programme_number, 0) as programme_number,
        openings.start_date as opening_start_date,
        openings.scheme as opening_scheme,
        openings.pharmacy_id as opening_pharmacy_id,
        openings.opening_event_number
    from events
    left join core_programme_openings as openings
        on openings.patient_id = events.patient_id
        and openings.start_date <= events.delivery_date
        and (openings.next_start_date is null or events.delivery_date < openings.next_start_date)
),

patient_running as (
    select
        *,
        coalesce(sum(duration_days) over patient_order, 0)::integer as patient_step_days,
        coalesce(
            sum(case when kind = 'reduction' then capsules end) over patient_order, 0
        )::integer as patient_reduction_days
    from assigned_to_openings
    window patient_order as (
        partition by patient_id
        order by patient_event_number
        rows between unbounded preceding and current row
    )
),

programme_running as (
    -- Within a programme, in event order; its first event is the initiation that opened it.
    select
        *,
        first_value(prescriber_id) over programme_order as opening_prescriber_id,
        count(*) filter (where kind = 'reduction') over programme_order as n_reductions_so_far,
        count(*) filter (where kind = 'stabilisation') over programme_order
            as n_stabilisations_so_far,
        count(*) filter (where kind = 'follow_up') over programme_order as n_follow_ups_so_far,
        max(delivery_date - (patient_step_days - duration_days)) over programme_order
            as coverage_anchor_date,
        min(delivery_date) filter (where kind = 'reduction') over whole_programme
            as first_reduction_date
    from patient_running
    window
        programme_order as (
            partition by patient_id, programme_number
            order by patient_event_number
            rows between unbounded preceding and current row
        ),
        whole_programme as (partition by patient_id, programme_number)
),

step_ends as (
    -- The step end of each reduction, per run of reductions (see the header).
    select
        *,
        case
            when kind = 'reduction'
                then max(
                    case
                        when kind = 'reduction'
                            then delivery_date - (patient_reduction_days - capsules)
                    end
                ) over reduction_run + (patient_reduction_days - 1)
        end as step_end_date
    from programme_running
    window reduction_run as (
        partition by patient_id, programme_number, n_stabilisations_so_far
        order by patient_event_number
        rows between unbounded preceding and current row
    )
),

previous_steps as (
    select
        *,
        last_value(
            case
                when duration_days is not null
                    then {
                        'kind': kind,
                        'delivery_date': delivery_date,
                        'capsules': capsules,
                        'step_end_date': step_end_date
                    }
            end
            ignore nulls
        ) over previous_events as previous_step
    from step_ends
    window previous_events as (
        partition by patient_id, programme_number
        order by patient_event_number
        rows between unbounded preceding and 1 preceding
    )
),

assigned as (
    select
        event_id,
        patient_id,
        patient_event_number,
        pharmacy_id,
        delivery_date,
        delivery_month_date,
        cnk,
        kind,
        kind_order,
        scheme,
        capsules,
        unit_number,
        key_letter_value,
        fee_eur,
        patient_birth_year,
        prescriber_id,
        programme_number,
        programme_number = 0 as is_unassigned,
        case when programme_number > 0 then patient_id || '#' || programme_number end
            as programme_id,
        opening_pharmacy_id as programme_pharmacy_id,
        opening_start_date as programme_start_date,
        opening_scheme as programme_scheme,
        programme_number > 1 as is_repeat_programme,
        -- The initiation that opened the programme: the first initiation of its start day.
        coalesce(patient_event_number = opening_event_number, false) as is_opening_initiation,
        coalesce(kind = 'initiation' and patient_event_number <> opening_event_number, false)
            as is_repeat_initiation,
        case when programme_number > 0 then opening_prescriber_id end
            as programme_prescriber_id,
        case when programme_number > 0 then delivery_date - opening_start_date end
            as days_since_start,
        -- k: this is the k-th event of its kind in the programme (reduction k is step k).
        case
            when programme_number = 0 then null
            when kind = 'initiation' then 1
            when kind = 'reduction' then n_reductions_so_far
            when kind = 'stabilisation' then n_stabilisations_so_far
            when kind = 'follow_up' then n_follow_ups_so_far
        end::integer as kind_number,
        programme_number > 0 and duration_days is not null as is_step,
        case when programme_number > 0 then duration_days end as duration_days,
        case
            when programme_number > 0 and duration_days is not null
                then coverage_anchor_date + (patient_step_days - 1)
        end as covered_until_date,
        case
            when programme_number > 0 and duration_days is not null
                then coverage_anchor_date + (patient_step_days - duration_days)
        end as coverage_start_date,
        case when programme_number > 0 then step_end_date end as step_end_date,
        case when programme_number > 0 then first_reduction_date end
            as programme_first_reduction_date,
        -- The programme's previous reduction/stabilisation event (null for its first).
        case when programme_number > 0 then previous_step.kind end as previous_step_kind,
        case when programme_number > 0 then previous_step.delivery_date end
            as previous_step_delivery_date,
        case when programme_number > 0 then previous_step.capsules end as previous_step_capsules,
        case when programme_number > 0 then previous_step.step_end_date end
            as previous_step_end_date,
        case
            when programme_number > 0
                then (n_reductions_so_far - case when kind = 'reduction' then 1 else 0 end)
        end::integer as n_prior_reductions
    from previous_steps
)

select * from assigned;
