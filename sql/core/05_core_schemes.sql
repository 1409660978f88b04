-- The schemes figures are broken down by, in the order tables show them: the schemes of the
-- initiation fee codes (5, 7, 10) and then 'total', the three together.
create or replace view core_schemes as
with schemes as (
    select scheme::varchar as scheme, row_number() over (order by scheme)::integer as scheme_order
    from stg_fee_codes
    where kind = 'initiation'
    union all
    select 'total', count(*)::integer + 1 from stg_fee_codes where kind = 'initiation'
)

select * from schemes;
