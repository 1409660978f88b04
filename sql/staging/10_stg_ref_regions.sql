-- Reference data: Belgium's three regions with their population (a VALUES view, no raw
-- table), the denominators of the rates per 100,000 inhabitants.
-- Source: Statbel (Belgian statistical office), "Population par lieu de résidence, 1er janvier
-- 2024" / "Bevolking naar woonplaats, 1 januari 2024" (population by place of residence on
-- 1 January 2024): Brussels-Capital Region 1,249,597; Flemish Region 6,821,770; Walloon
-- Region 3,692,283 (Belgium 11,763,650). Update the three figures and population_date together
-- when a newer year is used; see sql/marts/mart_programmes_by_region.md.
create or replace view stg_ref_regions as
with source as (
    select * from (
        values
            ('BE-BRU', 1, 'Bruxelles-Capitale', 'Brussel', 'Brussels-Capital', 1249597),
            ('BE-VLG', 2, 'Flandre', 'Vlaanderen', 'Flanders', 6821770),
            ('BE-WAL', 3, 'Wallonie', 'Wallonië', 'Wallonia', 3692283)
    ) as regions (region_code, region_order, name_fr, name_nl, name_en, population)
),

sourced as (
    select
        region_code,
        region_order::integer as region_order,
        name_fr as region_name_fr,
        name_nl as region_name_nl,
        name_en as region_name_en,
        population::integer as population,
        date '2024-01-01' as population_date,
        'Statbel, Population par lieu de résidence / Bevolking naar woonplaats, 2024-01-01'
            as population_source
    from source
)

select * from sourced;
