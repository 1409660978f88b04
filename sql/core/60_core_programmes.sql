-- SPEC §5: one row per programme with its outcome as of the as-of date. Where programmes
-- start, their scheme and pharmacy: core_programme_openings.
-- Completed on the delivery date of reduction event number `scheme`. Otherwise stopped when
-- as-of > covered_until + grace_days (stop date = covered_until), or, with no reduction or
-- stabilisation event, when as-of > start + grace_days (stop date = start). Otherwise in
-- progress: as-of exactly on the limit is still in progress.
create or replace view core_programmes as
with programme_events as (
    select * from core_programme_events where not is_unassigned
),

summarised as (
    select
        programme_id,
        any_value(patient_id) as patient_id,
        any_value(programme_number) as programme_number,
        any_value(programme_pharmacy_id) as pharmacy_id,
        any_value(programme_start_date) as start_date,
        any_value(programme_scheme) as scheme,
        count(*) filter (where kind = 'reduction')::integer as n_reduction_events,
        count(*) filter (where kind = 'stabilisation')::integer as n_stabilisation_events,
        count(*) filter (where kind = 'follow_up')::integer as n_follow_up_events,
        count(*) filter (where kind = 'initiation')::integer as n_initiation_events,
        any_value(programme_first_reduction_date) as first_reduction_date,
        max(delivery_date) as last_event_date,
        max(covered_until_date) as covered_until_date,
        min(delivery_date) filter (
            where kind = 'reduction' and kind_number = programme_scheme
        ) as completed_date
    from programme_events
    group by programme_id
),

stops as (
    select
        summarised.*,
        settings.as_of_date,
        case
            when summarised.completed_date is not null then null
            when summarised.covered_until_date is not null
                and settings.as_of_date > summarised.covered_until_date + settings.grace_days
                then summarised.covered_until_date
            when summarised.covered_until_date is null
                and settings.as_of_date > summarised.start_date + settings.grace_days
                then summarised.start_date
        end as stop_date
    from summarised
    cross join stg_settings as settings
),

outcomes as (
    select
        programme_id,
        patient_id,
        programme_number,
        programme_number > 1 as is_repeat_programme,
        pharmacy_id,
        start_date,
        date_trunc('month', start_date)::date as start_month_date,
        scheme,
        n_reduction_events,
        n_stabilisation_events,
        n_follow_up_events,
        n_initiation_events,
        first_reduction_date,
        last_event_date,
        covered_until_date,
        completed_date,
        stop_date,
        coalesce(completed_date, stop_date) as end_date,
        case
            when completed_date is not null then 'completed'
            when stop_date is not null then 'stopped'
            else 'in_progress'
        end as status,
        completed_date is not null as is_completed,
        stop_date is not null as is_stopped,
        completed_date is null and stop_date is null as is_in_progress,
        as_of_date
    from stops
)

select * from outcomes;
