-- SPEC v2 §14: what the warehouse holds of benzodiazepine and Z-drug (BZRA) deliveries, in one
-- row: the observed window (first and last delivery date on or before the as-of date), the
-- number of deliveries and of pharmacies whose exports carry them, and clonazepam (N03AE01),
-- outside the BZRA groups, shown apart and not counted. With no delivery, R16-R18 and the
-- BZRA-free figures are "not observable" (etl/figures.py).
create or replace view mart_bzra_window as
with clonazepam as (
    select count(*)::integer as n_clonazepam_lines
    from stg_bzra_lines as lines
    cross join stg_settings as settings
    where lines.is_clonazepam
        and lines.delivery_date <= settings.as_of_date
),

summary as (
    select
        bzra_window.first_date,
        bzra_window.last_date,
        bzra_window.n_deliveries,
        (select count(*) from core_bzra_pharmacies)::integer as n_pharmacies,
        clonazepam.n_clonazepam_lines
    from core_bzra_window as bzra_window
    cross join clonazepam
)

select * from summary;
