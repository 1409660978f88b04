-- SPEC §15: the figures of mart_vintage_figures at every vintage month first..last, from the
-- pseudo-patients of replicated_lines.sql run once through the views. A patient's state s
-- holds from vintage s up to the month before its next state: its contribution is added at s
-- and taken away at the next state, and the figure at vintage V is the sum of these changes
-- up to V. Same definitions as mart_vintage_figures: programme starts (one per patient,
-- month and scheme), reduction events and fees of the events that belong to a programme, by
-- the programme's scheme; 'total' is the sum of the schemes. Variables: vintage_first and
-- vintage_last (first days of the months). One row per vintage, delivery month <= vintage,
-- and scheme.
with states as (
    select
        patient_id as pseudo_id,
        left(patient_id, length(patient_id) - 8) as patient,
        right(patient_id, 7) as state_month,
        lead(right(patient_id, 7)) over (
            partition by left(patient_id, length(patient_id) - 8)
            order by right(patient_id, 7)
        ) as next_state_month
    from (select distinct patient_id from billing_lines)
),

contributions as (
    select
        patient_id as pseudo_id,
        strftime(start_month_date, '%Y-%m') as month,
        scheme::varchar as scheme,
        1 as patients_initiated,
        0 as reduction_steps_delivered,
        0::decimal(18, 2) as fees_estimated_eur
    from core_programmes
    group by all
    union all
    select
        patient_id as pseudo_id,
        strftime(delivery_month_date, '%Y-%m') as month,
        programme_scheme::varchar as scheme,
        0 as patients_initiated,
        count(*) filter (where kind = 'reduction') as reduction_steps_delivered,
        coalesce(sum(fee_eur), 0)::decimal(18, 2) as fees_estimated_eur
    from core_programme_events
    where not is_unassigned
    group by all
),

changes as (
    select
        states.state_month as vintage,
        contributions.month,
        contributions.scheme,
        contributions.patients_initiated,
        contributions.reduction_steps_delivered,
        contributions.fees_estimated_eur
    from contributions
    inner join states on states.pseudo_id = contributions.pseudo_id
    union all
    select
        states.next_state_month as vintage,
        contributions.month,
        contributions.scheme,
        -contributions.patients_initiated,
        -contributions.reduction_steps_delivered,
        -contributions.fees_estimated_eur
    from contributions
    inner join states on states.pseudo_id = contributions.pseudo_id
    where states.next_state_month is not null
),

summed_changes as (
    select
        vintage,
        month,
        scheme,
        sum(patients_initiated) as patients_initiated,
        sum(reduction_steps_delivered) as reduction_steps_delivered,
        sum(fees_estimated_eur) as fees_estimated_eur
    from changes
    group by all
),

month_numbers as (
    select
        range as month_date
    from range(
        getvariable('vintage_first')::date,
        getvariable('vintage_last')::date + interval 1 day,
        interval 1 month
    )
),

grid as (
    select
        strftime(vintages.month_date, '%Y-%m') as vintage,
        strftime(months.month_date, '%Y-%m') as month,
        schemes.scheme
    from month_numbers as vintages
    inner join month_numbers as months on months.month_date <= vintages.month_date
    cross join (select scheme from core_schemes where scheme <> 'total') as schemes
),

per_scheme as (
    select
        grid.vintage,
        grid.month,
        grid.scheme,
        coalesce(sum(summed_changes.patients_initiated), 0)::integer as patients_initiated,
        coalesce(sum(summed_changes.reduction_steps_delivered), 0)::integer
            as reduction_steps_delivered,
        coalesce(sum(summed_changes.fees_estimated_eur), 0)::decimal(18, 2) as fees_estimated_eur
    from grid
    left join summed_changes
        on summed_changes.month = grid.month
        and summed_changes.scheme = grid.scheme
        and summed_changes.vintage <= grid.vintage
    group by all
),

totals as (
    select
        vintage,
        month,
        'total' as scheme,
        sum(patients_initiated)::integer as patients_initiated,
        sum(reduction_steps_delivered)::integer as reduction_steps_delivered,
        sum(fees_estimated_eur)::decimal(18, 2) as fees_estimated_eur
    from per_scheme
    group by all
)

select * from per_scheme
union all
select * from totals
order by vintage, month, scheme;
