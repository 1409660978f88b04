-- Seed (SPEC v2 §14): the decree's annex table of the 19 molecules allowed for a reimbursed
-- withdrawal programme (royal decree of 2 July 2025, annex I.2, "table des molécules
-- autorisées", source CBIP), with their WHO ATC codes (checked against the WHO ATC index).
-- duration_of_action: UC ultra-short (half-life < 5 h), C short (5-10 h), ML intermediate
-- (10-20 h), L long (> 20 h). max_daily_dose_mg: the maximum daily dose over the last 3
-- months (3 x the usual dose). diazepam_factor: mg of diazepam per mg of the molecule.
-- A BZRA line (SPEC §14) is one whose ATC is under N05BA, N05CD or N05CF: these 19 and any
-- other molecule of those groups. Clonazepam (N03AE01) is outside the table and the groups:
-- shown apart, never counted.
create or replace view stg_bzra_molecules as
with seed (molecule, atc, duration_of_action, max_daily_dose_mg, diazepam_factor) as (
    values
        ('alprazolam', 'N05BA12', 'ML', 3.0, 10.0),
        ('bromazepam', 'N05BA08', 'ML', 30.0, 1.0),
        ('brotizolam', 'N05CD09', 'UC', 0.75, 40.0),
        ('clobazam', 'N05BA09', 'L', 60.0, 0.5),
        ('clorazepate', 'N05BA05', 'L', 60.0, 0.75),
        ('clotiazepam', 'N05BA21', 'ML', 30.0, 2.0),
        ('diazepam', 'N05BA01', 'L', 30.0, 1.0),
        ('ethyl loflazepate', 'N05BA18', 'L', 6.0, 5.0),
        ('flunitrazepam', 'N05CD03', 'C', 3.0, 10.0),
        ('loprazolam', 'N05CD11', 'C', 3.0, 10.0),
        ('lorazepam', 'N05BA06', 'ML', 7.5, 5.0),
        ('lormetazepam', 'N05CD06', 'C', 3.0, 10.0),
        ('nitrazepam', 'N05CD02', 'L', 15.0, 1.0),
        ('nordazepam', 'N05BA16', 'L', 45.0, 1.0),
        ('oxazepam', 'N05BA04', 'C', 150.0, 0.3),
        ('prazepam', 'N05BA11', 'L', 90.0, 0.5),
        ('triazolam', 'N05CD05', 'UC', 0.75, 80.0),
        ('zolpidem', 'N05CF02', 'C', 30.0, 1.0),
        ('zopiclone', 'N05CF01', 'C', 22.5, 1.33)
),

typed as (
    select
        molecule,
        atc,
        duration_of_action,
        max_daily_dose_mg::decimal(8, 2) as max_daily_dose_mg,
        diazepam_factor::decimal(6, 2) as diazepam_factor
    from seed
)

select * from typed;
