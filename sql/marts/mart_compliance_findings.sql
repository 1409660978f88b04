-- SPEC §8: one row per flagged event and rule, over the events up to the as-of date. An event
-- can break several rules: it then has one row per rule. Each rule is one CTE, named after its
-- id; the metric registry (sql/registry/rules/) points at these CTEs. The rules whose findings
-- depend on the patient's events up to the flagged event only (R01, R03-R15) are CTEs of the
-- core view core_compliance_findings_causal (sql/core/95_core_compliance_findings_causal.sql:
-- the core store keeps them and filters them to the as-of date); those that depend on the
-- as-of date are CTEs here: R02 and R16-R18. Each rule states its severity as the registry
-- does (tests/test_registry.py checks they agree): the state of play sets apart the fees of the
-- events an error rule flags (fees_flagged_eur).
--
-- Why an event is flagged is not a sentence here but a message for each reader's language:
-- `detail_key` names the sentence (words `finding_<detail_key>` in etl/base/words/) and
-- `detail_values` gives its named values as text (dates ISO, numbers, ids, the event's kind);
-- etl/figures.py (finding_detail) writes it out in French, Dutch or English.
-- R02 says whether the patient has an initiation up to the as-of date.
-- R16-R18 (SPEC §14) read the BZRA deliveries around each programme (core_programme_bzra):
-- R16 and R17 flag the programme's opening initiation, only when their window is observable;
-- R18 flags BZRA deliveries (no event: event_id null, kind 'bzra').
create or replace view mart_compliance_findings as
with events as not materialized (
    -- Not materialized: read by every rule, it is a pass-through; materialized, it was a copy
    -- of every event with every column (a quarter of the mart's time at 10x).
    select * from core_programme_events
),

first_initiations as (
    select
        patient_id,
        min(delivery_date) as first_initiation_date
    from events
    where kind = 'initiation'
    group by patient_id
),

r02_unassigned as (
    -- Each unassigned event: delivered before the patient's first initiation event, or the
    -- patient has no initiation event up to the as-of date.
    select
        events.*,
        'R02' as rule_id,
        'error' as severity,
        case
            when first_initiations.first_initiation_date is null then 'r02_no_initiation'
            else 'r02_before_first_initiation'
        end as detail_key,
        case
            when first_initiations.first_initiation_date is null
                then map {'kind': events.kind}
            else map {
                'kind': events.kind,
                'first_initiation_date': first_initiations.first_initiation_date::varchar
            }
        end as detail_values
    from events
    left join first_initiations on first_initiations.patient_id = events.patient_id
    where events.is_unassigned
),

programme_bzra as (
    select * from core_programme_bzra
),

opening_initiations as (
    select * from events where is_opening_initiation
),

r16_no_prior_use as (
    -- On the opening initiation: no BZRA delivery to the patient (at any pharmacy) in
    -- [S - 180, S - 1] ("no recorded chronic use"), when that window is observable.
    select
        opening.*,
        'R16' as rule_id,
        'warning' as severity,
        'r16_no_prior_use' as detail_key,
        map {
            'window_start_date': (bzra.start_date - 180)::varchar,
            'window_end_date': (bzra.start_date - 1)::varchar
        } as detail_values
    from programme_bzra as bzra
    inner join opening_initiations as opening on opening.programme_id = bzra.programme_id
    where bzra.has_no_prior_use
),

r17_several_molecules as (
    -- On the opening initiation: deliveries of two or more different ATC codes in
    -- [S - 90, S - 1] (not a single molecule), when that window is observable.
    select
        opening.*,
        'R17' as rule_id,
        'warning' as severity,
        'r17_several_molecules' as detail_key,
        map {
            'atc_codes': array_to_string(bzra.atc_prior_90, ', '),
            'molecules': bzra.n_atc_prior_90::varchar,
            'window_start_date': (bzra.start_date - 90)::varchar,
            'window_end_date': (bzra.start_date - 1)::varchar
        } as detail_values
    from programme_bzra as bzra
    inner join opening_initiations as opening on opening.programme_id = bzra.programme_id
    where bzra.has_several_molecules
),

r18_windows as (
    -- Input of R18: each BZRA delivery in the window of a programme of its patient, [S, T]
    -- (in progress: [S, as-of]), in the first such programme only.
    select
        deliveries.*,
        bzra.programme_id,
        bzra.pharmacy_id as programme_pharmacy_id,
        bzra.start_date as programme_start_date,
        case when bzra.is_in_progress then bzra.as_of_date else bzra.end_date end
            as programme_window_end_date,
        bzra.atc_prior_90
    from core_bzra_deliveries as deliveries
    inner join programme_bzra as bzra
        on bzra.patient_id = deliveries.patient_id
        and deliveries.delivery_date between bzra.start_date
            and case when bzra.is_in_progress then bzra.as_of_date else bzra.end_date end
    qualify row_number() over (
        partition by deliveries.delivery_id order by bzra.start_date, bzra.programme_id
    ) = 1
),

r18_bzra_during_programme as (
    -- Each BZRA delivery in the programme's window, except a delivery at the programme's
    -- pharmacy of an ATC the patient received (at any pharmacy) in [S - 90, S - 1]: the pack
    -- the pharmacy may charge for the magistral preparation.
    select
        null::varchar as event_id,
        windows.programme_id,
        windows.patient_id,
        null::bigint as patient_event_number,
        windows.pharmacy_id,
        windows.delivery_date,
        windows.cnk,
        'bzra' as kind,
        'R18' as rule_id,
        'error' as severity,
        case
            when windows.pharmacy_id = windows.programme_pharmacy_id
                then 'r18_bzra_same_pharmacy'
            else 'r18_bzra_other_pharmacy'
        end as detail_key,
        map_concat(
            map {
                'atc': windows.atc,
                'pharmacy_id': windows.pharmacy_id,
                'programme_start_date': windows.programme_start_date::varchar,
                'window_end_date': windows.programme_window_end_date::varchar
            },
            case
                when windows.pharmacy_id = windows.programme_pharmacy_id
                    then map {}::map(varchar, varchar)
                else map {'programme_pharmacy_id': windows.programme_pharmacy_id}
            end
        ) as detail_values
    from r18_windows as windows
    where not (
        windows.pharmacy_id = windows.programme_pharmacy_id
        and list_contains(windows.atc_prior_90, windows.atc)
    )
),

findings as (
    select * from core_compliance_findings_causal
    union all by name select * from r02_unassigned
    union all by name select * from r16_no_prior_use
    union all by name select * from r17_several_molecules
    union all by name select * from r18_bzra_during_programme
),

described as (
    select
        rule_id,
        severity,
        event_id,
        programme_id,
        patient_id,
        patient_event_number,
        pharmacy_id,
        delivery_date,
        cnk,
        kind,
        detail_key,
        detail_values
    from findings
)

select * from described;
