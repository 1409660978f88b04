-- SPEC §3: rows refused by a row check at loading, counted by reason (all loads, whatever the
-- as-of date: a rejected row may have no readable date).
create or replace view mart_data_quality_rejects as
with rejects as (
    select * from stg_rejects
),

by_reason as (
    select
        reason,
        count(*)::integer as n_rejects,
        count(distinct load_id)::integer as n_loads,
        min(load_id) as first_load_id,
        max(load_id) as last_load_id,
        min(detail) as example_detail
    from rejects
    group by reason
)

select * from by_reason;
