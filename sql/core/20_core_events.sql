-- SPEC §4.2-4.3: one event per unit of a positive net quantity, with its kind (by CNK), its
-- place in the patient's event order and its estimated fee (SPEC §2).
-- Order of a patient's events: delivery date, kind (initiation, reduction, stabilisation,
-- follow_up), CNK, pharmacy; units of one net are identical, so their order is immaterial.
create or replace view core_events as
with positive_nets as (
    select * from core_netted_lines where net_quantity > 0
),

coded as (
    select
        positive_nets.patient_id,
        positive_nets.pharmacy_id,
        positive_nets.delivery_date,
        positive_nets.cnk,
        positive_nets.net_quantity,
        codes.kind,
        codes.kind_order,
        codes.scheme,
        codes.capsules,
        codes.coefficient_name,
        positive_nets.patient_birth_year,
        positive_nets.prescriber_id
    from positive_nets
    inner join stg_fee_codes as codes on codes.cnk = positive_nets.cnk
),

units as (
    select
        *,
        unnest(range(1, net_quantity + 1)) as unit_number
    from coded
),

ordered as (
    select
        *,
        row_number() over (
            partition by patient_id
            order by delivery_date, kind_order, cnk, pharmacy_id, unit_number
        ) as patient_event_number
    from units
),

priced as (
    -- Fee of one event = round(P valid on the delivery date x coefficient, 2). With no P in
    -- force on that date (before the first row of the table), the fee is unknown (null).
    select
        ordered.*,
        key_letter.key_letter_value,
        round(
            key_letter.key_letter_value
            * case ordered.coefficient_name
                when 'interview' then settings.interview_coefficient
                else settings.preparation_coefficient
            end,
            2
        ) as fee_eur
    from ordered
    cross join stg_settings as settings
    left join stg_key_letter_values as key_letter
        on ordered.delivery_date >= key_letter.valid_from_date
        and (key_letter.valid_until_date is null or ordered.delivery_date <= key_letter.valid_until_date)
),

identified as (
    select
        patient_id || '/' || patient_event_number as event_id,
        patient_id,
        patient_event_number,
        pharmacy_id,
        delivery_date,
        date_trunc('month', delivery_date)::date as delivery_month_date,
        cnk,
        kind,
        kind_order,
        scheme,
        capsules,
        unit_number,
        key_letter_value,
        fee_eur,
        patient_birth_year,
        prescriber_id
    from priced
)

select * from identified;
