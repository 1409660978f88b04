-- Normalise and check the kept rows of one file (SPEC §3): programme lines, BZRA lines (SPEC
-- §14) and rows whose CNK is not a valid code. Other medicines were counted and dropped before
-- (etl/ingest/load.py, which keeps a row as a BZRA line by the same test as `line_kind` here).
-- Reads the temp view `load_source`: line_number and the thirteen canonical columns as text, NULL
-- where the file has no such column. (The row as the file wrote it is read for the rejected
-- rows only, by etl/ingest/load.py.)
-- Each row gets either a reject `reason` (the first check it fails, in the order of SPEC §3)
-- or the canonical values and the fingerprint that make loading idempotent.
with trimmed as (
    select
        line_number,
        nullif(trim(patient_id), '') as patient_id,
        nullif(trim(pharmacy_id), '') as pharmacy_id,
        nullif(trim(delivery_date), '') as delivery_date_text,
        nullif(trim(cnk), '') as cnk_text,
        nullif(trim(quantity), '') as quantity_text,
        nullif(replace(replace(replace(trim(amount_eur), '€', ''), ' ', ''), chr(160), ''), '')
            as amount_text,
        nullif(trim(billing_month), '') as billing_month_text,
        nullif(trim(insurer_code), '') as insurer_code,
        nullif(trim(patient_birth_year), '') as birth_year_text,
        nullif(upper(trim(patient_sex)), '') as sex_text,
        nullif(trim(pharmacy_postcode), '') as pharmacy_postcode,
        nullif(trim(prescriber_id), '') as prescriber_id,
        nullif(upper(trim(atc)), '') as atc_text
    from load_source
),

parsed as (
    select
        *,
        -- Day before month, always (Belgian); ISO and compact forms too. The two usual forms
        -- (dd/mm/yyyy, yyyy-mm-dd) are read by a date cast first, which gives the same date
        -- (or none) as the formats below at a third of their cost (tests/test_load.py).
        case
            when delivery_date_text glob '[0-9][0-9]/[0-9][0-9]/[0-9][0-9][0-9][0-9]'
                then try_cast(
                    substr(delivery_date_text, 7, 4) || '-' || substr(delivery_date_text, 4, 2)
                    || '-' || substr(delivery_date_text, 1, 2) as date)
            when delivery_date_text glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'
                then try_cast(delivery_date_text as date)
            else try_strptime(
                delivery_date_text,
                ['%Y-%m-%d', '%d/%m/%Y', '%d-%m-%Y', '%d.%m.%Y', '%Y%m%d',
                 '%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S', '%d/%m/%Y %H:%M:%S']
            )::date
        end as delivery_date,
        coalesce(regexp_full_match(cnk_text, '[0-9]{1,7}'), false) as is_cnk_valid,
        try_cast(replace(coalesce(quantity_text, '1'), ',', '.') as double) as quantity_number,
        -- Decimal comma or point; when both appear, the last one is the decimal separator.
        try_cast(
            case
                when contains(amount_text, ',') and contains(amount_text, '.') then
                    case
                        when strpos(reverse(amount_text), ',') < strpos(reverse(amount_text), '.')
                            then replace(replace(amount_text, '.', ''), ',', '.')
                        else replace(amount_text, ',', '')
                    end
                else replace(amount_text, ',', '.')
            end as decimal(12, 2)
        ) as amount_eur,
        -- The same for the billing month (mm/yyyy, yyyy-mm).
        case
            when billing_month_text glob '[0-9][0-9]/[0-9][0-9][0-9][0-9]'
                then try_cast(
                    substr(billing_month_text, 4, 4) || '-' || substr(billing_month_text, 1, 2)
                    || '-01' as date)
            when billing_month_text glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]'
                then try_cast(billing_month_text || '-01' as date)
            else coalesce(
                try_strptime(billing_month_text || '-01', '%Y-%m-%d'),
                try_strptime(billing_month_text || '01', '%Y%m%d'),
                try_strptime('01/' || billing_month_text, '%d/%m/%Y'),
                try_strptime('01-' || billing_month_text, '%d-%m-%Y'),
                try_strptime(
                    billing_month_text,
                    ['%Y-%m-%d', '%d/%m/%Y', '%d-%m-%Y', '%Y-%m-%d %H:%M:%S']
                )
            )
        end as billing_month_start,
        try_cast(replace(birth_year_text, ',', '.') as double) as birth_year_number
    from trimmed
),

checked as (
    select
        *,
        case
            when patient_id is null or pharmacy_id is null or delivery_date_text is null
                or cnk_text is null
                then 'missing_required'
            when delivery_date is null then 'date_unreadable'
            when delivery_date < date '2020-01-01' then 'date_before_2020'
            when delivery_date > current_date then 'date_after_load_day'
            when not is_cnk_valid then 'cnk_invalid'
            when quantity_number is null or quantity_number <> trunc(quantity_number)
                then 'quantity_not_integer'
            when quantity_number = 0 then 'quantity_zero'
            when quantity_number < -3 or quantity_number > 3 then 'quantity_out_of_range'
        end as reason
    from parsed
),

explained as (
    select
        *,
        case reason
            when 'missing_required' then 'required value missing: ' || concat_ws(', ',
                case when patient_id is null then 'patient_id' end,
                case when pharmacy_id is null then 'pharmacy_id' end,
                case when delivery_date_text is null then 'delivery_date' end,
                case when cnk_text is null then 'cnk' end)
            when 'date_unreadable' then 'delivery date unreadable: ' || delivery_date_text
            when 'date_before_2020' then 'delivery date before 2020-01-01: ' || delivery_date_text
            when 'date_after_load_day' then 'delivery date after the day of loading: ' || delivery_date_text
            when 'cnk_invalid' then 'CNK is not 1 to 7 digits: ' || cnk_text
            when 'quantity_not_integer' then 'quantity is not an integer: ' || quantity_text
            when 'quantity_zero' then 'quantity is 0'
            when 'quantity_out_of_range' then 'quantity outside -3..3: ' || quantity_text
        end as detail
    from checked
),

canonical as (
    select
        line_number,
        reason,
        detail,
        patient_id,
        pharmacy_id,
        delivery_date,
        lpad(cnk_text, 7, '0') as cnk,
        case when reason is null then quantity_number::integer end as quantity,
        amount_eur,
        strftime(billing_month_start, '%Y-%m') as billing_month,
        insurer_code,
        case
            when birth_year_number = trunc(birth_year_number)
                and birth_year_number between 1880 and year(current_date)
                then birth_year_number::integer
        end as patient_birth_year,
        case
            when sex_text in ('M', 'H', 'MAN', 'HOMME') then 'M'
            when sex_text in ('F', 'V', 'VROUW', 'FEMME') then 'F'
            else 'U'
        end as patient_sex,
        pharmacy_postcode,
        prescriber_id,
        atc_text
    from explained
),

classified as (
    -- SPEC §14: a line's ATC is the export's `atc` value, else the product reference's for its
    -- CNK. A programme CNK makes a programme line whatever its ATC; an ATC under N05BA, N05CD
    -- or N05CF a BZRA line; clonazepam (N03AE01) a line kept apart.
    select
        canonical.* exclude (atc_text),
        coalesce(canonical.atc_text, upper(trim(reference.atc))) as atc,
        case
            when fee_codes.cnk is not null then 'programme'
            when regexp_full_match(coalesce(canonical.atc_text, upper(trim(reference.atc))),
                'N05(BA|CD|CF).*') then 'bzra'
            when coalesce(canonical.atc_text, upper(trim(reference.atc))) = 'N03AE01'
                then 'clonazepam'
            else 'programme'  -- a row kept for its invalid CNK: rejected (reason not null)
        end as line_kind
    from canonical
    left join fee_codes on fee_codes.cnk = canonical.cnk
    left join product_reference as reference on reference.cnk = canonical.cnk
),

fingerprinted as (
    -- A programme line's fingerprint is that of SPEC v1 (its ATC, if any, is not in it), so
    -- that exports loaded before still match; a BZRA line's also covers its ATC.
    select
        *,
        case when reason is null then md5_number(to_json([
            patient_id, pharmacy_id, delivery_date::varchar, cnk, quantity::varchar,
            amount_eur::varchar, billing_month, insurer_code, patient_birth_year::varchar,
            patient_sex, pharmacy_postcode, prescriber_id
        ] || case when line_kind = 'programme' then [] else [atc] end)::varchar) end
            as fingerprint
    from classified
)

-- A valid line's occurrence numbers the identical lines (same fingerprint) of the file in file
-- order: (fingerprint, occurrence) is its key (sql/raw/tables.sql). Rejected rows have none.
select
    *,
    case when fingerprint is not null
        then row_number() over (partition by fingerprint order by line_number) end as occurrence
from fingerprinted
