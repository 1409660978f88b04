-- Each programme (core_programmes) with where and for whom it was started, read from its
-- initiation line: the billing lines of the initiation interview (patient, initiating
-- pharmacy, start date, the scheme's initiation CNK, positive quantity, up to the as-of date).
-- When several such lines carry a value (an export re-sent, a correction and its re-billing),
-- the value of the line loaded last (highest load_id, then line number) is taken, ignoring
-- lines without it.
--
-- Region and province from the pharmacy postcode: spaces removed, an optional "B" / "BE"
-- prefix and dash allowed ("B-1000"), then exactly 4 digits; the number is looked up in the
-- postcode ranges of stg_ref_provinces. Missing, malformed or unlisted postcodes -> 'unknown'.
-- Age at the start = year of the initiation date - birth year (the age reached during that
-- year: the export gives the birth year only); bands <45, 45-64, 65-74, 75-84, 85+, and
-- 'unknown' when the birth year is missing or after the start year.
create or replace view core_programme_profiles as
with programmes as (
    select
        programmes.programme_id,
        programmes.patient_id,
        programmes.programme_number,
        programmes.programme_number = 1 as is_first_programme,
        programmes.pharmacy_id,
        programmes.start_date,
        programmes.scheme,
        programmes.status,
        programmes.is_completed,
        programmes.is_stopped,
        programmes.is_in_progress,
        programmes.as_of_date,
        initiation_lines.pharmacy_postcode,
        initiation_lines.patient_birth_year,
        initiation_lines.patient_sex,
        initiation_lines.insurer_code
    from core_programmes as programmes
    left join core_initiation_lines as initiation_lines
        on initiation_lines.patient_id = programmes.patient_id
        and initiation_lines.pharmacy_id = programmes.pharmacy_id
        and initiation_lines.delivery_date = programmes.start_date
        and initiation_lines.scheme = programmes.scheme
),

postcoded as (
    select
        *,
        case
            when regexp_full_match(
                upper(replace(pharmacy_postcode, ' ', '')), '(BE?-?)?[0-9]{4}'
            )
                then right(replace(pharmacy_postcode, ' ', ''), 4)::integer
        end as postcode_number,
        year(start_date) - patient_birth_year as age_at_start
    from programmes
),

placed as (
    select
        postcoded.*,
        coalesce(provinces.province_code, 'unknown') as province_code,
        coalesce(provinces.region_code, 'unknown') as region_code
    from postcoded
    left join stg_ref_provinces as provinces
        on postcoded.postcode_number between provinces.postcode_from and provinces.postcode_to
),

profiled as (
    select
        programme_id,
        patient_id,
        programme_number,
        is_first_programme,
        pharmacy_id,
        start_date,
        scheme,
        status,
        is_completed,
        is_stopped,
        is_in_progress,
        pharmacy_postcode,
        postcode_number,
        province_code,
        region_code,
        patient_birth_year,
        case when age_at_start >= 0 then age_at_start end as age_at_start,
        case
            when age_at_start is null or age_at_start < 0 then 'unknown'
            when age_at_start < 45 then '<45'
            when age_at_start < 65 then '45-64'
            when age_at_start < 75 then '65-74'
            when age_at_start < 85 then '75-84'
            else '85+'
        end as age_band,
        coalesce(patient_sex, 'unknown') as patient_sex,
        coalesce(insurer_code, 'unknown') as insurer_code,
        as_of_date
    from placed
)

select * from profiled;
