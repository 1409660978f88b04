-- The initiation lines of SPEC §8's profiles (read by core_programme_profiles): per patient,
-- pharmacy, delivery date and initiation scheme, the billing lines of the scheme's initiation
-- CNK with a positive quantity, up to the as-of date, and the values they carry. When several
-- such lines carry a value (an export re-sent, a correction and its re-billing), the value of
-- the line loaded last (highest load_id, then line number) is taken, ignoring lines without it.
create or replace view core_initiation_lines as
with settings as (
    select as_of_date from stg_settings
),

initiation_codes as (
    select cnk, scheme from stg_fee_codes where kind = 'initiation'
),

initiation_lines as (
    select
        lines.patient_id,
        lines.pharmacy_id,
        lines.delivery_date,
        codes.scheme,
        arg_max(lines.pharmacy_postcode, (lines.load_id, lines.line_number))
            filter (where lines.pharmacy_postcode is not null) as pharmacy_postcode,
        arg_max(lines.patient_birth_year, (lines.load_id, lines.line_number))
            filter (where lines.patient_birth_year is not null) as patient_birth_year,
        arg_max(lines.patient_sex, (lines.load_id, lines.line_number))
            filter (where lines.patient_sex in ('M', 'F')) as patient_sex,
        arg_max(lines.insurer_code, (lines.load_id, lines.line_number))
            filter (where lines.insurer_code is not null) as insurer_code
    from stg_billing_lines as lines
    inner join initiation_codes as codes on codes.cnk = lines.cnk
    cross join settings
    where lines.quantity > 0 and lines.delivery_date <= settings.as_of_date
    group by lines.patient_id, lines.pharmacy_id, lines.delivery_date, codes.scheme
)

select * from initiation_lines;
