-- SPEC §14, BZRA deliveries around each programme: start S, T = its covered_until (S when it
-- has none). A figure is observable only when its window lies inside the observed window
-- (core_bzra_window) and the programme's pharmacy has BZRA deliveries (core_bzra_pharmacies);
-- otherwise it is null ("not observable"), never 0 or false.
-- - prior use (R16): deliveries to the patient, at any pharmacy, in [S - 180, S - 1];
-- - molecules before (R17): distinct ATC codes delivered in [S - 90, S - 1];
-- - BZRA-free at N days (N = 90, 180, 365), closed programmes only: no delivery in
--   [T + 1, T + N], observable when moreover T + N <= as-of.
create or replace view core_programme_bzra as
with settings as (
    select as_of_date from stg_settings
),

programmes as (
    select
        programmes.programme_id,
        programmes.patient_id,
        programmes.pharmacy_id,
        programmes.scheme,
        programmes.start_month_date,
        programmes.start_date,
        coalesce(programmes.covered_until_date, programmes.start_date) as end_date,
        programmes.is_completed,
        programmes.is_stopped,
        programmes.is_completed or programmes.is_stopped as is_closed,
        programmes.is_in_progress,
        bzra_window.first_date as window_first_date,
        bzra_window.last_date as window_last_date,
        bzra_pharmacies.pharmacy_id is not null as pharmacy_has_bzra,
        settings.as_of_date
    from core_programmes as programmes
    cross join core_bzra_window as bzra_window
    cross join settings
    left join core_bzra_pharmacies as bzra_pharmacies
        on bzra_pharmacies.pharmacy_id = programmes.pharmacy_id
),

prior_use as (
    select
        programmes.programme_id,
        count(deliveries.delivery_id) filter (
            where deliveries.delivery_date >= programmes.start_date - 180
        )::integer as n_deliveries_prior_180,
        count(distinct deliveries.atc) filter (
            where deliveries.delivery_date >= programmes.start_date - 90
        )::integer as n_atc_prior_90,
        list_sort(list(distinct deliveries.atc) filter (
            where deliveries.delivery_date >= programmes.start_date - 90
        )) as atc_prior_90
    from programmes
    left join core_bzra_deliveries as deliveries
        on deliveries.patient_id = programmes.patient_id
        and deliveries.delivery_date between programmes.start_date - 180
            and programmes.start_date - 1
    group by programmes.programme_id
),

after_use as (
    -- The first delivery after T (to tell BZRA-free at 90, 180 and 365 days at once).
    select
        programmes.programme_id,
        min(deliveries.delivery_date) as first_delivery_after_date
    from programmes
    inner join core_bzra_deliveries as deliveries
        on deliveries.patient_id = programmes.patient_id
        and deliveries.delivery_date > programmes.end_date
    where programmes.is_closed
    group by programmes.programme_id
),

observed as (
    select
        programmes.*,
        prior_use.n_deliveries_prior_180,
        prior_use.n_atc_prior_90,
        coalesce(prior_use.atc_prior_90, []) as atc_prior_90,
        after_use.first_delivery_after_date,
        coalesce(
            programmes.pharmacy_has_bzra
            and programmes.window_first_date <= programmes.start_date - 180
            and programmes.start_date - 1 <= programmes.window_last_date,
            false
        ) as is_prior_180_observable,
        coalesce(
            programmes.pharmacy_has_bzra
            and programmes.window_first_date <= programmes.start_date - 90
            and programmes.start_date - 1 <= programmes.window_last_date,
            false
        ) as is_prior_90_observable,
        coalesce(
            programmes.is_closed and programmes.pharmacy_has_bzra
            and programmes.end_date + 90 <= programmes.as_of_date
            and programmes.window_first_date <= programmes.end_date + 1
            and programmes.end_date + 90 <= programmes.window_last_date,
            false
        ) as is_free_90d_observable,
        coalesce(
            programmes.is_closed and programmes.pharmacy_has_bzra
            and programmes.end_date + 180 <= programmes.as_of_date
            and programmes.window_first_date <= programmes.end_date + 1
            and programmes.end_date + 180 <= programmes.window_last_date,
            false
        ) as is_free_180d_observable,
        coalesce(
            programmes.is_closed and programmes.pharmacy_has_bzra
            and programmes.end_date + 365 <= programmes.as_of_date
            and programmes.window_first_date <= programmes.end_date + 1
            and programmes.end_date + 365 <= programmes.window_last_date,
            false
        ) as is_free_365d_observable
    from programmes
    left join prior_use on prior_use.programme_id = programmes.programme_id
    left join after_use on after_use.programme_id = programmes.programme_id
),

judged as (
    select
        *,
        case when is_prior_180_observable then n_deliveries_prior_180 = 0 end
            as has_no_prior_use,
        case when is_prior_90_observable then n_atc_prior_90 >= 2 end as has_several_molecules,
        case when is_free_90d_observable then
            coalesce(first_delivery_after_date > end_date + 90, true) end as is_bzra_free_90d,
        case when is_free_180d_observable then
            coalesce(first_delivery_after_date > end_date + 180, true) end as is_bzra_free_180d,
        case when is_free_365d_observable then
            coalesce(first_delivery_after_date > end_date + 365, true) end as is_bzra_free_365d
    from observed
)

select * from judged;
