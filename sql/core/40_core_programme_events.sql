-- SPEC §5: every event with its programme. Every initiation event opens a programme; the
-- patient's later events belong to it until their next initiation event. Events before the
-- patient's first initiation are unassigned (programme_number 0, no programme_id).
-- For reduction and stabilisation events (the programme's steps) also the coverage and the
-- previous step, which the outcome (core_programmes) and rules R08-R10 read.
--
-- Coverage: a reduction covers its capsule count in days, a stabilisation stabilisation_days.
-- In event order: start_k = max(delivery_date_k, covered_until_(k-1) + 1) and
-- covered_until_k = start_k + d_k - 1. This recursion has a closed form, proved by induction
-- on k from covered_until_k = max(delivery_date_k + d_k - 1, covered_until_(k-1) + d_k):
--   covered_until_k = S_k - 1 + max over steps j <= k of (delivery_date_j - S_(j-1))
-- where S_k is the running sum of the durations. S may be counted from any fixed origin (the
-- origin cancels out), so the patient-level running sum serves every programme of the patient.
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

patient_running as (
    -- programme_number: how many initiation events the patient has had so far.
    select
        *,
        (sum(case when kind = 'initiation' then 1 else 0 end) over patient_order)::integer
            as programme_number,
        coalesce(sum(duration_days) over patient_order, 0)::integer as patient_step_days
    from events
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
        first_value(pharmacy_id) over programme_order as programme_pharmacy_id,
        first_value(delivery_date) over programme_order as programme_start_date,
        first_value(scheme) over programme_order as programme_scheme,
        count(*) filter (where kind = 'reduction') over programme_order as n_reductions_so_far,
        count(*) filter (where kind = 'stabilisation') over programme_order
            as n_stabilisations_so_far,
        count(*) filter (where kind = 'follow_up') over programme_order as n_follow_ups_so_far,
        max(delivery_date - (patient_step_days - duration_days)) over programme_order
            as coverage_anchor_date,
        last_value(
            case
                when duration_days is not null
                    then {'kind': kind, 'delivery_date': delivery_date, 'capsules': capsules}
            end
            ignore nulls
        ) over previous_events as previous_step
    from patient_running
    window
        programme_order as (
            partition by patient_id, programme_number
            order by patient_event_number
            rows between unbounded preceding and current row
        ),
        previous_events as (
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
        programme_number,
        programme_number = 0 as is_unassigned,
        case when programme_number > 0 then patient_id || '#' || programme_number end
            as programme_id,
        case when programme_number > 0 then programme_pharmacy_id end as programme_pharmacy_id,
        case when programme_number > 0 then programme_start_date end as programme_start_date,
        case when programme_number > 0 then programme_scheme end as programme_scheme,
        case when programme_number > 0 then delivery_date - programme_start_date end
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
        -- The programme's previous reduction/stabilisation event (null for its first).
        case when programme_number > 0 then previous_step.kind end as previous_step_kind,
        case when programme_number > 0 then previous_step.delivery_date end
            as previous_step_delivery_date,
        case when programme_number > 0 then previous_step.capsules end as previous_step_capsules,
        case
            when programme_number > 0
                then (n_reductions_so_far - case when kind = 'reduction' then 1 else 0 end)
        end::integer as n_prior_reductions
    from programme_running
)

select * from assigned;
