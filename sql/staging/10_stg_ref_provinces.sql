-- Reference data: Belgian postcode ranges -> province (or the Brussels-Capital Region, which
-- belongs to no province) and region, after bpost's postcode plan (the first digits of a
-- postcode follow the province). A VALUES view, no raw table. Ranges are inclusive; together
-- they cover 1000-9999 with no overlap. Province codes are ISO 3166-2:BE.
create or replace view stg_ref_provinces as
with source as (
    select * from (
        values
            (1000, 1299, 'BE-BRU', 1, 'BE-BRU', 'Région de Bruxelles-Capitale',
                'Brussels Hoofdstedelijk Gewest', 'Brussels-Capital Region'),
            (1300, 1499, 'BE-WBR', 11, 'BE-WAL', 'Brabant wallon', 'Waals-Brabant',
                'Walloon Brabant'),
            (1500, 1999, 'BE-VBR', 4, 'BE-VLG', 'Brabant flamand', 'Vlaams-Brabant',
                'Flemish Brabant'),
            (3000, 3499, 'BE-VBR', 4, 'BE-VLG', 'Brabant flamand', 'Vlaams-Brabant',
                'Flemish Brabant'),
            (2000, 2999, 'BE-VAN', 2, 'BE-VLG', 'Anvers', 'Antwerpen', 'Antwerp'),
            (3500, 3999, 'BE-VLI', 5, 'BE-VLG', 'Limbourg', 'Limburg', 'Limburg'),
            (4000, 4999, 'BE-WLG', 8, 'BE-WAL', 'Liège', 'Luik', 'Liège'),
            (5000, 5999, 'BE-WNA', 10, 'BE-WAL', 'Namur', 'Namen', 'Namur'),
            (6000, 6599, 'BE-WHT', 7, 'BE-WAL', 'Hainaut', 'Henegouwen', 'Hainaut'),
            (7000, 7999, 'BE-WHT', 7, 'BE-WAL', 'Hainaut', 'Henegouwen', 'Hainaut'),
            (6600, 6999, 'BE-WLX', 9, 'BE-WAL', 'Luxembourg', 'Luxemburg', 'Luxembourg'),
            (8000, 8999, 'BE-VWV', 6, 'BE-VLG', 'Flandre-Occidentale', 'West-Vlaanderen',
                'West Flanders'),
            (9000, 9999, 'BE-VOV', 3, 'BE-VLG', 'Flandre-Orientale', 'Oost-Vlaanderen',
                'East Flanders')
    ) as ranges (
        postcode_from, postcode_to, province_code, province_order, region_code, name_fr,
        name_nl, name_en
    )
),

renamed as (
    select
        postcode_from::integer as postcode_from,
        postcode_to::integer as postcode_to,
        province_code,
        province_order::integer as province_order,
        region_code,
        name_fr as province_name_fr,
        name_nl as province_name_nl,
        name_en as province_name_en
    from source
)

select * from renamed;
