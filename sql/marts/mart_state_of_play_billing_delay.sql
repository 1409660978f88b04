-- How much of a month's initiations is known after 1, 2 and 3 months of billing, from the
-- billing month of the lines (when the export has it). One row per number of billing months k
-- (1, 2, 3), pooled over the final (not provisional) months among the 12 months up to the
-- reported month (report_month, else the as-of month).
--
-- For a month M: the final initiations are the patients with a programme starting in M, per
-- scheme (patients_initiated, total of the schemes, as of the as-of date). One is known after
-- k months of billing when the line of the initiation interview that sets its programme's
-- scheme and pharmacy (the last of the start day) was billed in M or in the k - 1 months
-- after it: billing month <= M + (k - 1). So k = 1 is the billing of M itself, what the first
-- export covering M holds. The initiation's line is the earliest billed positive line of
-- (patient, pharmacy, delivery date, CNK) of that interview. Initiations whose lines carry no
-- billing month are left out of both the numerator and the denominator.
create or replace view mart_state_of_play_billing_delay as
with settings as (
    select * from stg_settings
),

reported_month as (
    select
        coalesce(report_month_date, date_trunc('month', as_of_date)::date) as month_start_date
    from settings
),

final_months as (
    select core_months.month_start_date
    from core_months
    cross join reported_month
    where core_months.month_start_date <= reported_month.month_start_date
        and core_months.month_start_date > reported_month.month_start_date - interval 12 month
        and not core_months.is_provisional
),

initiations as (
    select
        programmes.patient_id,
        programmes.pharmacy_id,
        programmes.start_date,
        programmes.start_month_date,
        programmes.scheme,
        codes.cnk
    from core_programmes as programmes
    inner join stg_fee_codes as codes
        on codes.kind = 'initiation'
        and codes.scheme = programmes.scheme
    inner join final_months on final_months.month_start_date = programmes.start_month_date
),

billed as (
    -- One row per patient, scheme and start month, as patients_initiated counts them.
    select
        initiations.patient_id,
        initiations.scheme,
        initiations.start_month_date,
        min(lines.billing_month) as billing_month
    from initiations
    left join stg_billing_lines as lines
        on lines.patient_id = initiations.patient_id
        and lines.pharmacy_id = initiations.pharmacy_id
        and lines.delivery_date = initiations.start_date
        and lines.cnk = initiations.cnk
        and lines.quantity > 0
    group by all
),

billing_months as (
    select unnest([1, 2, 3]) as n_billing_months
),

pooled as (
    select
        billing_months.n_billing_months,
        (select strftime(min(month_start_date), '%Y-%m') from final_months) as first_month,
        (select strftime(max(month_start_date), '%Y-%m') from final_months) as last_month,
        (select count(*) from final_months)::integer as n_months,
        count(billed.patient_id)::integer as n_initiations,
        count(billed.billing_month)::integer as n_initiations_with_billing_month,
        count(*) filter (
            where billed.billing_month <= strftime(
                billed.start_month_date + to_months(billing_months.n_billing_months - 1), '%Y-%m'
            )
        )::integer as n_initiations_known
    from billing_months
    left join billed on true
    group by billing_months.n_billing_months
),

shares as (
    select
        *,
        case
            when n_initiations_with_billing_month > 0
                then round(n_initiations_known / n_initiations_with_billing_month, 4)
        end as share_known
    from pooled
)

select * from shares order by n_billing_months;
