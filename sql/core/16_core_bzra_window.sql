-- SPEC §14, the observed window: from the first to the last date of BZRA deliveries (on or
-- before the as-of date) in the warehouse, in one row (dates null when there is none), with
-- the number of deliveries. Pharmacies whose exports carry BZRA deliveries:
-- core_bzra_pharmacies.
create or replace view core_bzra_window as
select
    min(delivery_date) as first_date,
    max(delivery_date) as last_date,
    count(*)::integer as n_deliveries
from core_bzra_deliveries;
