-- Revisions of the monthly state of play: for each of the 12 months up to the reported month
-- (report_month, else the as-of month), patients initiated per scheme and in total as first
-- reported and as now, and the difference (late billing changes past months).
--
-- "First reported" is the figure of the first report of the month:
-- 1. the earliest archived report pack of that month (report_archive), if one was issued before
--    the pack being written (report_id) and saw no later load than it: recomputed over the
--    lines of loads up to its max_load_id, as of its as-of date (the same lines and date give
--    the same figure);
-- 2. otherwise reconstructed from the load ledger: the first load whose latest delivery date
--    reaches the month's last working day (a month ending on a Sunday or a public holiday has
--    no delivery on its last day), over the lines of loads up to that one, as of that load's
--    latest delivery date;
-- 3. otherwise (the month is not complete in any earlier load) the figure now: this is the
--    first report of the month.
-- patients_initiated (SPEC §6: patients with a programme starting in M) depends on the lines,
-- the as-of date and, through the running programme that makes an initiation a repeat one,
-- on grace_days and stabilisation_days: the recomputation gives the figure printed then when
-- those two settings are still the ones in force. The figure now is that of
-- mart_state_of_play (core_programmes). Each first report is recomputed with the same rule,
-- the macro programme_openings of core_programme_openings, over the events its lines make:
-- the netting and event order of core_netted_lines and core_events (SPEC §4), for the
-- patients with an initiation line in M and the days up to the end of M (a programme's start
-- depends only on the events before it). A first report whose source is 'current' is the
-- figure now. tests/test_report_pack.py checks them against mart_state_of_play.
--
-- The cache (issue 20): a first report that is not 'current' is a pure function of its KEY:
-- the month M, the load id of its cutoff (the lines of loads up to that id), its last date
-- (least(first-reported as-of date, last day of M): the lines delivered up to it), the two
-- settings grace_days and stabilisation_days, and this version of sql/ (the rule itself).
-- The lines of loads up to an id never change while those loads stay in the ledger (a load
-- adds lines under a new id; `unload` removes a load's lines with its ledger row), so the key
-- also holds the ledger's ids up to the cutoff: an unloaded load (id u) changes that list for
-- every key with a cutoff >= u, whose cached rows then no longer match. The publisher stores
-- the figures of the keys the default mart needs in first_reported_cache
-- (etl/base/revisions_cache.py, once per publication, only the keys missing); this mart reads
-- the cached figure of a month whose key matches a cached row and recomputes the others
-- (revisions_first_reported_computed): another configuration, another as-of or report month,
-- a max_load_id view or a cache lacking the key gives the same figure as without the cache.
-- With vintage_date set (SPEC §15) the lines are those known then: nothing is read from the
-- cache. tests/test_revisions_cache.py compares the mart with and without the cache.
create table if not exists first_reported_cache (
    month_start_date   date     not null,  -- the month M
    load_id            integer  not null,  -- the cutoff: lines of loads up to this id
    last_date          date     not null,  -- lines delivered up to this date
    grace_days         integer  not null,
    stabilisation_days integer  not null,
    ledger_load_ids    integer[] not null, -- the ledger's load ids up to load_id then
    schema_fingerprint varchar  not null,  -- warehouse_meta's: the version of sql/
    scheme             integer  not null,  -- 5, 7 or 10 (every scheme has its row, 0 included)
    n_patients         integer  not null,  -- patients with a programme starting in M
    computed_at        timestamp not null
);

-- The first report of each of the 12 months up to the reported month: its source and key, and
-- whether the cache holds its figure.
create or replace view revisions_cutoffs as
with settings as (
    select * from stg_settings
),

reported_month as (
    select
        coalesce(report_month_date, date_trunc('month', as_of_date)::date) as month_start_date
    from settings
),

months as (
    select core_months.*
    from core_months
    cross join reported_month
    where core_months.month_start_date <= reported_month.month_start_date
        and core_months.month_start_date > reported_month.month_start_date - interval 12 month
),

last_working_days as (
    select
        date_trunc('month', calendar_date)::date as month_start_date,
        max(calendar_date) as last_working_date
    from core_calendar
    where is_working_day
    group by 1
),

ledger_cutoffs as (
    select
        months.month_start_date,
        min(loads.load_id) as load_id
    from months
    inner join last_working_days
        on last_working_days.month_start_date = months.month_start_date
    inner join stg_loads as loads
        on loads.max_delivery_date >= last_working_days.last_working_date
    where last_working_days.last_working_date <= months.as_of_date
    group by months.month_start_date
),

archive_cutoffs as (
    select
        archive.report_month_date as month_start_date,
        min(archive.report_id) as report_id
    from stg_report_archive as archive
    cross join settings
    where (settings.report_id is null or archive.report_id < settings.report_id)
        and (settings.max_load_id is null or archive.max_load_id <= settings.max_load_id)
    group by archive.report_month_date
),

cutoffs as (
    select
        months.month,
        months.month_start_date,
        months.is_provisional,
        case
            when archive_cutoffs.report_id is not null then 'archive'
            when ledger_cutoffs.load_id is not null then 'ledger'
            else 'current'
        end as first_reported_source,
        archive_cutoffs.report_id as first_reported_report_id,
        case
            when archive_cutoffs.report_id is not null then archive.max_load_id
            when ledger_cutoffs.load_id is not null then ledger_cutoffs.load_id
            else settings.max_load_id
        end as first_reported_load_id,
        case
            when archive_cutoffs.report_id is not null then archive.as_of_date
            when ledger_cutoffs.load_id is not null
                then least(loads.max_delivery_date, settings.as_of_date)
            else settings.as_of_date
        end as first_reported_as_of_date,
        settings.grace_days,
        settings.stabilisation_days,
        settings.vintage_date
    from months
    cross join settings
    left join archive_cutoffs on archive_cutoffs.month_start_date = months.month_start_date
    left join stg_report_archive as archive on archive.report_id = archive_cutoffs.report_id
    left join ledger_cutoffs on ledger_cutoffs.month_start_date = months.month_start_date
    left join stg_loads as loads on loads.load_id = ledger_cutoffs.load_id
),

keyed as (
    -- The cache key of each first report that is not the figure now; a key only when every
    -- line is seen (no vintage) and the cutoff is a load.
    select
        cutoffs.*,
        least(cutoffs.first_reported_as_of_date, last_day(cutoffs.month_start_date))
            as last_date,
        cutoffs.first_reported_source <> 'current'
            and cutoffs.first_reported_load_id is not null
            and cutoffs.vintage_date is null as is_cacheable,
        (
            select list(ledger.load_id order by ledger.load_id)
            from loads as ledger
            where ledger.load_id <= cutoffs.first_reported_load_id
        ) as ledger_load_ids,
        (
            select meta.value
            from warehouse_meta as meta
            where meta.key = 'schema_fingerprint'
        ) as schema_fingerprint
    from cutoffs
),

cached_keys as (
    select distinct
        month_start_date,
        load_id,
        last_date,
        grace_days,
        stabilisation_days,
        ledger_load_ids,
        schema_fingerprint
    from first_reported_cache
),

looked_up as (
    select
        keyed.* exclude (is_cacheable),
        keyed.is_cacheable,
        keyed.is_cacheable and cached_keys.load_id is not null as is_cached
    from keyed
    left join cached_keys
        on cached_keys.month_start_date = keyed.month_start_date
        and cached_keys.load_id = keyed.first_reported_load_id
        and cached_keys.last_date = keyed.last_date
        and cached_keys.grace_days = keyed.grace_days
        and cached_keys.stabilisation_days = keyed.stabilisation_days
        and cached_keys.ledger_load_ids = keyed.ledger_load_ids
        and cached_keys.schema_fingerprint = keyed.schema_fingerprint
)

select * from looked_up;

-- The first reports recomputed: those of revisions_cutoffs that are not the figure now and
-- not in the cache. One row per first report and scheme (0 included), with its key.
create or replace view revisions_first_reported_computed as
with evaluations as (
    -- Each month's first report, when it is not the figure now: the lines it saw.
    select
        month_start_date as cutoff_month_date,
        first_reported_load_id as load_id,
        last_date,
        grace_days,
        stabilisation_days,
        ledger_load_ids,
        schema_fingerprint,
        is_cacheable
    from revisions_cutoffs
    where first_reported_source <> 'current'
        and not is_cached
),

evaluated_patients as (
    -- Patients with an initiation line in the month of the report (a programme starting in
    -- it needs one), among the lines it saw. Joined on the month (an equality: with every
    -- first report in the cache, nothing is read past the first block of lines).
    select distinct
        evaluations.cutoff_month_date,
        lines.patient_id
    from evaluations
    inner join stg_billing_lines as lines
        on lines.delivery_month_date = evaluations.cutoff_month_date
        and lines.delivery_date <= evaluations.last_date
        and (evaluations.load_id is null or lines.load_id <= evaluations.load_id)
    inner join stg_fee_codes as codes
        on codes.cnk = lines.cnk
        and codes.kind = 'initiation'
),

evaluated_lines as (
    -- Every line those patients had that the report saw.
    select
        evaluated_patients.cutoff_month_date,
        lines.patient_id,
        lines.pharmacy_id,
        lines.delivery_date,
        lines.cnk,
        lines.quantity
    from evaluated_patients
    inner join evaluations
        on evaluations.cutoff_month_date = evaluated_patients.cutoff_month_date
    inner join stg_billing_lines as lines
        on lines.patient_id = evaluated_patients.patient_id
        and lines.delivery_date <= evaluations.last_date
        and (evaluations.load_id is null or lines.load_id <= evaluations.load_id)
),

evaluated_nets as (
    -- SPEC §4.1 per first report: a positive net makes one event a unit.
    select
        cutoff_month_date,
        patient_id,
        pharmacy_id,
        delivery_date,
        cnk,
        sum(quantity)::integer as net_quantity
    from evaluated_lines
    group by all
    having sum(quantity) > 0
),

evaluated_events as (
    -- The input of programme_openings: one patient's sequence is one first report's view of
    -- one patient, so the patient key carries the report's month.
    select
        strftime(nets.cutoff_month_date, '%Y-%m') || '/' || nets.patient_id as patient_id,
        row_number() over (
            partition by nets.cutoff_month_date, nets.patient_id
            order by nets.delivery_date, codes.kind_order, nets.cnk, nets.pharmacy_id, units.unit
        ) as patient_event_number,
        nets.delivery_date,
        codes.kind,
        codes.scheme,
        nets.pharmacy_id,
        codes.capsules
    from evaluated_nets as nets
    inner join stg_fee_codes as codes on codes.cnk = nets.cnk
    cross join unnest(range(1, nets.net_quantity + 1)) as units(unit)
),

first_reported_openings as (
    select * from programme_openings('evaluated_events')
),

first_reported as (
    -- Programmes starting in the month of the report that saw them (the patient key starts
    -- with that month); a patient counts once per scheme, as in mart_state_of_play.
    select
        date_trunc('month', start_date)::date as month_start_date,
        scheme,
        count(distinct patient_id)::integer as n_patients
    from first_reported_openings
    where strftime(start_date, '%Y-%m') = left(patient_id, 7)
    group by all
),

initiation_schemes as (
    select scheme
    from stg_fee_codes
    where kind = 'initiation'
),

filled as (
    select
        evaluations.cutoff_month_date as month_start_date,
        evaluations.load_id,
        evaluations.last_date,
        evaluations.grace_days,
        evaluations.stabilisation_days,
        evaluations.ledger_load_ids,
        evaluations.schema_fingerprint,
        evaluations.is_cacheable,
        initiation_schemes.scheme,
        coalesce(first_reported.n_patients, 0)::integer as n_patients
    from evaluations
    cross join initiation_schemes
    left join first_reported
        on first_reported.month_start_date = evaluations.cutoff_month_date
        and first_reported.scheme = initiation_schemes.scheme
)

select * from filled;

create or replace view mart_state_of_play_revisions as
with cutoffs as (
    select * from revisions_cutoffs
),

months as (
    select month, month_start_date, is_provisional
    from cutoffs
),

first_reported as (
    -- The first reports held by the cache, then those recomputed.
    select
        cache.month_start_date,
        cache.scheme,
        cache.n_patients
    from cutoffs
    inner join first_reported_cache as cache
        on cache.month_start_date = cutoffs.month_start_date
        and cache.load_id = cutoffs.first_reported_load_id
        and cache.last_date = cutoffs.last_date
        and cache.grace_days = cutoffs.grace_days
        and cache.stabilisation_days = cutoffs.stabilisation_days
        and cache.ledger_load_ids = cutoffs.ledger_load_ids
        and cache.schema_fingerprint = cutoffs.schema_fingerprint
    where cutoffs.is_cached
    union all
    select
        month_start_date,
        scheme,
        n_patients
    from revisions_first_reported_computed
),

now as (
    select
        start_month_date as month_start_date,
        scheme,
        count(distinct patient_id)::integer as n_patients
    from core_programmes
    group by all
),

schemes as (
    select
        scheme::varchar as scheme,
        row_number() over (order by scheme)::integer as scheme_order,
        [scheme] as scheme_members
    from stg_fee_codes
    where kind = 'initiation'
    union all
    select
        'total' as scheme,
        4 as scheme_order,
        list(scheme) as scheme_members
    from stg_fee_codes
    where kind = 'initiation'
),

grid as (
    select
        months.month,
        months.month_start_date,
        months.is_provisional,
        schemes.scheme,
        schemes.scheme_order,
        schemes.scheme_members
    from months
    cross join schemes
),

compared as (
    select
        grid.month,
        grid.month_start_date,
        grid.is_provisional,
        grid.scheme,
        grid.scheme_order,
        cutoffs.first_reported_source,
        cutoffs.first_reported_report_id,
        cutoffs.first_reported_load_id,
        cutoffs.first_reported_as_of_date,
        case
            when cutoffs.first_reported_source = 'current' then coalesce((
                select sum(now.n_patients)
                from now
                where now.month_start_date = grid.month_start_date
                    and list_contains(grid.scheme_members, now.scheme)
            ), 0)
            else coalesce((
                select sum(first_reported.n_patients)
                from first_reported
                where first_reported.month_start_date = grid.month_start_date
                    and list_contains(grid.scheme_members, first_reported.scheme)
            ), 0)
        end::integer as patients_initiated_first_reported,
        coalesce((
            select sum(now.n_patients)
            from now
            where now.month_start_date = grid.month_start_date
                and list_contains(grid.scheme_members, now.scheme)
        ), 0)::integer as patients_initiated
    from grid
    inner join cutoffs on cutoffs.month_start_date = grid.month_start_date
),

revised as (
    select
        *,
        (patients_initiated - patients_initiated_first_reported)::integer
            as patients_initiated_revision
    from compared
)

select * from revised;
