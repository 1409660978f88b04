-- SPEC §8: the findings of the compliance rules that depend on the patient's events up to the
-- flagged event only, never on the as-of date: R01 and R03-R15. mart_compliance_findings is
-- these rows and those of the rules that do depend on the as-of date (R02, R16-R18). One row
-- per flagged event and rule, over the events up to the as-of date; the columns are the mart's.
--
-- Why the as-of date D does not enter them (the core store keeps this view "as of the end of
-- time" and filters it to delivery_date <= D, etl/base/store.py): every column of
-- core_programme_events they read but one is a running value over the patient's events up to
-- the event; the one that is not, programme_first_reduction_date, is null as of D when after
-- D, and R07 reads it only for reductions (their programme's first reduction is on or before
-- them) and stabilisations flagged later than it (day 360 after it); R01's first initiation of
-- the patient is on or before the flagged initiation; R12's completion date (the delivery of
-- the last reduction step, core_programmes) is before the flagged follow-up, so known as of
-- any D on or after it, and a completion after the follow-up flags it at no D; core_calendar
-- and the settings read do not depend on D. Not here: R02 (its detail says whether the
-- patient had an initiation by D) and R16-R18 (their windows end at D while a programme runs).
--
-- A value "of an event" (birth year, prescriber) is the largest non-empty value among the
-- lines netted into it (core_netted_lines). Why an event is flagged is `detail_key` and
-- `detail_values`, as described in sql/marts/mart_compliance_findings.sql.
create or replace view core_compliance_findings_causal as
with settings as (
    select * from stg_settings
),

events as not materialized (
    -- Not materialized: read by every rule, it is a pass-through; materialized, it was a copy
    -- of every event with every column (a quarter of the mart's time at 10x).
    select * from core_programme_events
),

programmes as not materialized (
    select * from core_programmes
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
    -- Each initiation event other than the one that opened the patient's first programme: a
    -- repeat initiation within a programme (it opens nothing), or the opening of a repeat
    -- programme (the decree reimburses one programme per patient).
    select
        events.*,
        'R01' as rule_id,
        'error' as severity,
        case
            when events.is_repeat_initiation then 'r01_repeat_initiation'
            else 'r01_repeat_programme'
        end as detail_key,
        case
            when events.is_repeat_initiation then map {
                'programme_number': events.programme_number::varchar,
                'programme_start_date': events.programme_start_date::varchar
            }
            else map {
                'programme_number': events.programme_number::varchar,
                'first_programme_start_date': first_initiations.first_initiation_date::varchar
            }
        end as detail_values
    from events
    inner join first_initiations on first_initiations.patient_id = events.patient_id
    where events.kind = 'initiation'
        and not (events.programme_number = 1 and events.is_opening_initiation)
),

r03_reduction_beyond_scheme as (
    -- Each reduction event numbered above the scheme's step count.
    select
        *,
        'R03' as rule_id,
        'error' as severity,
        'r03_reduction_beyond_scheme' as detail_key,
        map {
            'step_number': kind_number::varchar, 'scheme': programme_scheme::varchar
        } as detail_values
    from events
    where kind = 'reduction'
        and kind_number > programme_scheme
),

r04_third_stabilisation as (
    -- Each stabilisation event after the programme's second.
    select
        *,
        'R04' as rule_id,
        'error' as severity,
        'r04_third_stabilisation' as detail_key,
        map {'stabilisation_number': kind_number::varchar} as detail_values
    from events
    where kind = 'stabilisation'
        and kind_number > 2
),

r05_second_follow_up as (
    -- Each follow_up event after the programme's first.
    select
        *,
        'R05' as rule_id,
        'error' as severity,
        'r05_second_follow_up' as detail_key,
        map {'follow_up_number': kind_number::varchar} as detail_values
    from events
    where kind = 'follow_up'
        and kind_number > 1
),

r06_other_pharmacy as (
    -- Each event of a programme (initiations included) at another pharmacy than the
    -- programme's: that of the last initiation of its start day (core_programme_openings).
    select
        *,
        'R06' as rule_id,
        'error' as severity,
        'r06_other_pharmacy' as detail_key,
        map {
            'kind': kind,
            'pharmacy_id': pharmacy_id,
            'programme_pharmacy_id': programme_pharmacy_id
        } as detail_values
    from events
    where not is_unassigned
        and pharmacy_id <> programme_pharmacy_id
),

r07_tapering_days as (
    -- Input of R07: the date each reduction/stabilisation event is checked on (a reduction's
    -- step end, see R08; a stabilisation's delivery date, its length not being in the export)
    -- and the last allowed day, day max_programme_days (360) counted from D1, the delivery of
    -- the programme's first reduction event (day 1): D1 + 359.
    select
        events.*,
        case events.kind
            when 'reduction' then events.step_end_date
            else events.delivery_date
        end as checked_date,
        events.programme_first_reduction_date + (settings.max_programme_days - 1)
            as last_allowed_date,
        settings.max_programme_days
    from events
    cross join settings
    where events.kind in ('reduction', 'stabilisation')
        and events.programme_first_reduction_date is not null
),

r07_after_max_days as (
    -- The tapering within at most 360 days: each reduction event whose step end, and each
    -- stabilisation event whose delivery date, is later than D1 + 359.
    select
        tapering.* exclude (checked_date, last_allowed_date, max_programme_days),
        'R07' as rule_id,
        'error' as severity,
        case tapering.kind
            when 'reduction' then 'r07_reduction_after_max_days'
            else 'r07_stabilisation_after_max_days'
        end as detail_key,
        map_concat(
            case tapering.kind
                when 'reduction' then map {'step_end_date': tapering.checked_date::varchar}
                else map {'delivery_date': tapering.checked_date::varchar}
            end,
            map {
                'day_number': (
                    tapering.checked_date - tapering.programme_first_reduction_date + 1
                )::varchar,
                'first_reduction_date': tapering.programme_first_reduction_date::varchar,
                'max_programme_days': tapering.max_programme_days::varchar,
                'last_allowed_date': tapering.last_allowed_date::varchar
            }
        ) as detail_values
    from r07_tapering_days as tapering
    where tapering.checked_date > tapering.last_allowed_date
),

r08_steps_after_reduction as (
    -- Input of R08: reduction/stabilisation events whose previous step is a reduction, with
    -- that step's end (core_programme_events: early collection carried forward, so that
    -- stockpiling accumulates) and how far back the rule looks.
    select
        events.*,
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
        steps.* exclude (early_delivery_working_days, earliest_working_day_number),
        'R08' as rule_id,
        'warning' as severity,
        'r08_early_delivery' as detail_key,
        map {
            'kind': steps.kind,
            'delivery_date': steps.delivery_date::varchar,
            'earliest_date': earliest_day.calendar_date::varchar,
            'previous_capsules': steps.previous_step_capsules::varchar,
            'previous_delivery_date': steps.previous_step_delivery_date::varchar,
            'previous_end_date': steps.previous_step_end_date::varchar
        } as detail_values
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
        'error' as severity,
        'r09_stabilisation_after_stabilisation' as detail_key,
        map {'previous_delivery_date': previous_step_delivery_date::varchar} as detail_values
    from events
    where kind = 'stabilisation'
        and previous_step_kind = 'stabilisation'
),

r10_stabilisation_before_reduction as (
    -- Each stabilisation event with no reduction event before it in the programme.
    select
        *,
        'R10' as rule_id,
        'error' as severity,
        'r10_stabilisation_before_reduction' as detail_key,
        map {}::map(varchar, varchar) as detail_values
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
        'error' as severity,
        'r11_before_programme_start' as detail_key,
        map {
            'kind': events.kind,
            'delivery_date': events.delivery_date::varchar,
            'programme_start_date': settings.programme_start_date::varchar
        } as detail_values
    from events
    cross join settings
    where events.delivery_date < settings.programme_start_date
),

r12_follow_up_after_completion as (
    -- Each follow_up event of a completed programme delivered after its completion date (the
    -- decree: at the latest at the delivery of the last step). One on that day is on time.
    select
        events.*,
        'R12' as rule_id,
        'warning' as severity,
        'r12_follow_up_after_completion' as detail_key,
        map {
            'delivery_date': events.delivery_date::varchar,
            'completed_date': programmes.completed_date::varchar
        } as detail_values
    from events
    inner join programmes on programmes.programme_id = events.programme_id
    where events.kind = 'follow_up'
        and events.delivery_date > programmes.completed_date
),

r13_scheme_change as (
    -- Each initiation of a programme, the opening one included, whose scheme differs from the
    -- programme's (that of the last initiation of its start day): a same-day conflict or a
    -- later scheme change the programme does not apply.
    select
        *,
        'R13' as rule_id,
        'warning' as severity,
        'r13_scheme_change' as detail_key,
        map {
            'scheme': scheme::varchar,
            'programme_scheme': programme_scheme::varchar,
            'programme_start_date': programme_start_date::varchar
        } as detail_values
    from events
    where kind = 'initiation'
        and not is_unassigned
        and scheme <> programme_scheme
),

r14_minor as (
    -- Each initiation event that opens a programme for a patient certainly under 18:
    -- year(delivery_date) - birth year of the event < 18 (the decree is for adults; the
    -- export gives the birth year only, so 18 by birth year is not flagged).
    select
        *,
        'R14' as rule_id,
        'error' as severity,
        'r14_minor' as detail_key,
        map {
            'delivery_date': delivery_date::varchar,
            'birth_year': patient_birth_year::varchar,
            -- the birth year only: before or after the birthday in the year
            'youngest_age': (year(delivery_date) - patient_birth_year - 1)::varchar,
            'oldest_age': (year(delivery_date) - patient_birth_year)::varchar
        } as detail_values
    from events
    where is_opening_initiation
        and year(delivery_date) - patient_birth_year < 18
),

r15_other_prescriber as (
    -- Each reduction or stabilisation event whose prescriber differs from that of the
    -- initiation that opened its programme, both known (the decree: the initiating physician;
    -- the closing interview has no prescription).
    select
        *,
        'R15' as rule_id,
        'warning' as severity,
        'r15_other_prescriber' as detail_key,
        map {
            'kind': kind,
            'prescriber_id': prescriber_id,
            'programme_prescriber_id': programme_prescriber_id
        } as detail_values
    from events
    where is_step
        and prescriber_id <> programme_prescriber_id
),

findings as (
    select * from r01_repeat_initiation
    union all by name select * from r03_reduction_beyond_scheme
    union all by name select * from r04_third_stabilisation
    union all by name select * from r05_second_follow_up
    union all by name select * from r06_other_pharmacy
    union all by name select * from r07_after_max_days
    union all by name select * from r08_early_delivery
    union all by name select * from r09_stabilisation_after_stabilisation
    union all by name select * from r10_stabilisation_before_reduction
    union all by name select * from r11_before_programme_start
    union all by name select * from r12_follow_up_after_completion
    union all by name select * from r13_scheme_change
    union all by name select * from r14_minor
    union all by name select * from r15_other_prescriber
),

described as (
    select
        rule_id,
        severity,
        event_id,
        programme_id,
        patient_id,
        patient_event_number,
        pharmacy_id,
        delivery_date,
        cnk,
        kind,
        detail_key,
        detail_values
    from findings
)

select * from described;
