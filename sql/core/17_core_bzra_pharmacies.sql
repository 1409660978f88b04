-- SPEC §14: the pharmacies with BZRA deliveries (on or before the as-of date) in the
-- warehouse, i.e. whose exports carry them. A programme's BZRA figures are observable only at
-- such a pharmacy: deliveries at pharmacies whose exports carry none are invisible.
create or replace view core_bzra_pharmacies as
select distinct pharmacy_id
from core_bzra_deliveries;
