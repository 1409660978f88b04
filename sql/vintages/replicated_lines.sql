-- SPEC §15, every vintage in one pass (etl/nowcast.py, vintage_history). A patient's figures
-- depend only on the patient's own lines, and the lines a vintage V sees are those with
-- known month <= V and delivery month <= V (V's as-of date is its last day). So a patient's
-- lines only change at the months where one of them becomes visible: its "states". This
-- table holds, for each patient and each state month s (up to getvariable('vintage_last')),
-- the patient's lines visible at s, under the pseudo-patient id patient_id || '#' || 'YYYY-MM'
-- (s), so that the views compute every state of every patient in one pass. Read in a scratch
-- database in which `home_lines` and `home_loads` are the warehouse's billing_lines and loads.
create or replace table billing_lines as
with visible as (
    select
        lines.*,
        greatest(
            strptime(
                coalesce(lines.billing_month, strftime(loads.started_at, '%Y-%m')) || '-01',
                '%Y-%m-%d'
            )::date,
            date_trunc('month', lines.delivery_date)::date
        ) as visible_month_date
    from home_lines as lines
    left join home_loads as loads on loads.load_id = lines.load_id
    where getvariable('max_load_id') is null
        or lines.load_id <= getvariable('max_load_id')::integer
),

states as (
    select distinct patient_id, visible_month_date as state_month_date
    from visible
    where visible_month_date <= getvariable('vintage_last')::date
)

select
    visible.* exclude (visible_month_date)
    replace (visible.patient_id || '#' || strftime(states.state_month_date, '%Y-%m') as patient_id)
from visible
inner join states
    on states.patient_id = visible.patient_id
    and visible.visible_month_date <= states.state_month_date;
