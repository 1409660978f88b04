-- Reference data: the adult population (aged 18 and over) of each province and of the
-- Brussels-Capital Region (province_code of stg_ref_provinces), the denominators of the rates
-- per 100,000 adult inhabitants (SPEC §16, issue 17). A VALUES view, no raw table.
-- Source: Statbel (Belgian statistical office), legal population on 1 January 2023 by broad
-- age group (under 18, 18 to 64, 65 and over), as tabulated per judicial district in the
-- public prosecutors' annual statistics 2023, table B (stat.om-mp.be/corr/jstat2023/f/c02.html,
-- "Population totale de la Belgique au 01/01/2023 par grand groupe d'âge et par parquet").
-- Judicial districts map onto provinces: Flemish Brabant = Halle-Vilvoorde + Leuven; Hainaut =
-- Charleroi + Mons; Liège = Liège + Eupen; the others are one district each, and the Brussels
-- district is the Brussels-Capital Region. Belgium: 7,050,415 aged 18-64 and 2,310,809 aged 65
-- and over (9,361,224 adults of 11,697,557). Update every row and population_date together.
create or replace view stg_ref_adult_population as
with source as (
    select * from (
        values
            ('BE-BRU', 804889, 161548, 1241175),
            ('BE-VAN', 1141819, 383671, 1910952),
            ('BE-VLI', 535815, 195324, 895030),
            ('BE-VBR', 391593 + 315364, 126895 + 110004, 664201 + 523282),
            ('BE-VWV', 704812, 295832, 1220026),
            ('BE-VOV', 940426, 318697, 1561316),
            ('BE-WBR', 245835, 83713, 412934),
            ('BE-WHT', 329900 + 485986, 107372 + 157118, 551999 + 804896),
            ('BE-WLG', 622908 + 47537, 202965 + 16120, 1036135 + 79383),
            ('BE-WLX', 179594, 52472, 293967),
            ('BE-WNA', 303937, 99078, 502261)
    ) as areas (province_code, aged_18_64, aged_65_plus, population_all_ages)
),

sourced as (
    select
        province_code,
        (aged_18_64 + aged_65_plus)::integer as adult_population,
        population_all_ages::integer as population_all_ages,
        date '2023-01-01' as population_date,
        'Statbel, population légale au 1er janvier 2023 par grand groupe d''âge (18 ans et plus)'
            as population_source
    from source
)

select * from sourced;
