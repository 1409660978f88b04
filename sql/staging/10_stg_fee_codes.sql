-- The 8 fee codes (SPEC §2) with the rank of their kind in the event order of SPEC §4.3.
create or replace view stg_fee_codes as
with source as (
    select * from fee_codes
),

ranked as (
    select
        cnk,
        kind,
        case kind
            when 'initiation' then 1
            when 'reduction' then 2
            when 'stabilisation' then 3
            when 'follow_up' then 4
        end as kind_order,
        scheme,
        capsules,
        coefficient as coefficient_name,
        label_fr,
        label_nl,
        label_en
    from source
)

select * from ranked;
