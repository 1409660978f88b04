-- Reference data: Belgium's three regions (a VALUES view, no raw table). Their adult
-- populations, the denominators of the rates per 100,000 adult inhabitants, are the sums of
-- their provinces' in stg_ref_adult_population (see sql/marts/mart_programmes_by_region.md).
create or replace view stg_ref_regions as
with source as (
    select * from (
        values
            ('BE-BRU', 1, 'Bruxelles-Capitale', 'Brussel', 'Brussels-Capital'),
            ('BE-VLG', 2, 'Flandre', 'Vlaanderen', 'Flanders'),
            ('BE-WAL', 3, 'Wallonie', 'Wallonië', 'Wallonia')
    ) as regions (region_code, region_order, name_fr, name_nl, name_en)
),

renamed as (
    select
        region_code,
        region_order::integer as region_order,
        name_fr as region_name_fr,
        name_nl as region_name_nl,
        name_en as region_name_en
    from source
)

select * from renamed;
