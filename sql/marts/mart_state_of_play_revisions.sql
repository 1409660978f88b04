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
-- patients_initiated does not depend on the configuration (only on the lines and the as-of
-- date), so the recomputation is exact. The first reports and the figure now are computed in
-- one pass over the initiation lines, with the netting (SPEC §4.1) and the "first initiation
-- event" (SPEC §6) of core_netted_lines and core_events restricted to initiation interviews
-- (tests/test_report_pack.py checks both against mart_state_of_play).
create or replace view mart_state_of_play_revisions as
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
        months.month_start_date,
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
        end as first_reported_as_of_date
    from months
    cross join settings
    left join archive_cutoffs on archive_cutoffs.month_start_date = months.month_start_date
    left join stg_report_archive as archive on archive.report_id = archive_cutoffs.report_id
    left join ledger_cutoffs on ledger_cutoffs.month_start_date = months.month_start_date
    left join stg_loads as loads on loads.load_id = ledger_cutoffs.load_id
),

evaluations as (
    -- Each month's first report, and now (cutoff_month_date null): the lines each one saw.
    select
        month_start_date as cutoff_month_date,
        first_reported_load_id as load_id,
        first_reported_as_of_date as as_of_date
    from cutoffs
    union all
    select
        null as cutoff_month_date,
        max_load_id as load_id,
        as_of_date
    from settings
),

initiation_lines as (
    select
        lines.load_id,
        lines.patient_id,
        lines.pharmacy_id,
        lines.delivery_date,
        lines.cnk,
        lines.quantity,
        codes.scheme
    from stg_billing_lines as lines
    inner join stg_fee_codes as codes on codes.cnk = lines.cnk
    where codes.kind = 'initiation'
),

evaluated_initiations as (
    -- SPEC §4.1 per evaluation: net the lines it saw; a positive net is an initiation event.
    select
        evaluations.cutoff_month_date,
        initiation_lines.patient_id,
        initiation_lines.pharmacy_id,
        initiation_lines.delivery_date,
        initiation_lines.cnk,
        any_value(initiation_lines.scheme) as scheme
    from evaluations
    inner join initiation_lines
        on initiation_lines.delivery_date <= evaluations.as_of_date
        and (evaluations.load_id is null or initiation_lines.load_id <= evaluations.load_id)
    group by all
    having sum(initiation_lines.quantity) > 0
),

first_initiations as (
    -- The patient's first initiation event in the order of SPEC §4.3 (date, CNK, pharmacy).
    select
        *,
        date_trunc('month', delivery_date)::date as initiation_month_date
    from evaluated_initiations
    qualify row_number() over (
        partition by cutoff_month_date, patient_id
        order by delivery_date, cnk, pharmacy_id
    ) = 1
),

first_reported as (
    select
        cutoff_month_date as month_start_date,
        scheme,
        count(*)::integer as n_patients
    from first_initiations
    where initiation_month_date = cutoff_month_date
    group by all
),

now as (
    select
        initiation_month_date as month_start_date,
        scheme,
        count(*)::integer as n_patients
    from first_initiations
    where cutoff_month_date is null
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
        coalesce((
            select sum(first_reported.n_patients)
            from first_reported
            where first_reported.month_start_date = grid.month_start_date
                and list_contains(grid.scheme_members, first_reported.scheme)
        ), 0)::integer as patients_initiated_first_reported,
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
