-- SPEC §4.1: groups of lines (patient, pharmacy, delivery date, CNK) whose quantities net
-- below zero: a correction with no billed line to cancel. They make no event.
create or replace view mart_data_quality_unmatched_corrections as
with unmatched as (
    select * from core_netted_lines where is_unmatched_correction
),

described as (
    select
        unmatched.patient_id,
        unmatched.pharmacy_id,
        unmatched.delivery_date,
        strftime(unmatched.delivery_date, '%Y-%m') as delivery_month,
        unmatched.cnk,
        codes.kind,
        unmatched.net_quantity,
        unmatched.n_lines,
        unmatched.n_correction_lines
    from unmatched
    left join stg_fee_codes as codes on codes.cnk = unmatched.cnk
)

select * from described;
