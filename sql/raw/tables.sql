-- Raw tables written by the loader (etl/ingest/load.py). Everything else in sql/ is a view over these.

create sequence if not exists load_id_seq start 1;

-- The load ledger: one row per file accepted into the warehouse.
create table if not exists loads (
    load_id          integer primary key,
    file_name        varchar not null,   -- the file's name as given on the command line
    file_sha256      varchar not null,   -- SHA-256 of the file's bytes
    file_bytes       bigint,
    file_format      varchar,            -- csv | csv.gz | parquet | xlsx
    encoding         varchar,            -- utf-8 | windows-1252 (delimited text only)
    delimiter        varchar,            -- ; , tab | (delimited text only)
    mapping_file     varchar,            -- the --mapping file used, if any
    rows_read        bigint not null,    -- data rows in the file
    rows_new         bigint not null,    -- programme lines stored by this load
    rows_present     bigint not null,    -- programme lines already stored by an earlier load
    rows_skipped     bigint not null,    -- valid CNK of another medicine: not stored, counted
    rows_rejected    bigint not null,    -- failed a row check: see rejects
    min_delivery_date date,              -- over the programme lines of the file
    max_delivery_date date,
    started_at       timestamp not null,
    finished_at      timestamp not null,
    seconds          double not null,
    loaded_by        varchar
);
-- BZRA lines of the file (SPEC §14), stored in bzra_lines; a warehouse made before v2 gets the
-- columns here (null for its earlier loads).
alter table loads add column if not exists rows_bzra bigint;        -- BZRA lines accepted (new + present)
alter table loads add column if not exists rows_clonazepam bigint;  -- clonazepam lines (kept apart)
-- Issue 19: national register numbers the refusal rule does not count (column and count), '; '-separated.
alter table loads add column if not exists warnings varchar;

-- Loads removed by `benzo-monitor unload` (etl/ingest/unload.py): the load's ledger row and its
-- lines and rejects are deleted; this row keeps what was removed, and tells an id unloaded
-- already from one that never existed.
create table if not exists unloads (
    load_id          integer primary key,
    file_name        varchar not null,
    file_sha256      varchar not null,
    loaded_at        timestamp,          -- the load's finished_at
    billing_lines    bigint not null,    -- programme lines removed
    bzra_lines       bigint not null,    -- BZRA and clonazepam lines removed
    rejects          bigint not null,    -- rejected rows removed
    unloaded_at      timestamp not null,
    unloaded_by      varchar
);

-- Programme billing lines (one of the 8 fee codes), normalised to canonical values.
-- Idempotency: (fingerprint, occurrence) is unique. The fingerprint is the MD5 of all
-- canonical values; the occurrence numbers identical rows within one file.
create table if not exists billing_lines (
    fingerprint        uhugeint not null,
    occurrence         integer  not null,
    load_id            integer  not null,
    line_number        bigint   not null,  -- line in the source file (header = line 1)
    patient_id         varchar  not null,  -- pseudonymised patient
    pharmacy_id        varchar  not null,  -- pseudonymised pharmacy
    delivery_date      date     not null,
    cnk                varchar  not null,  -- 7 digits, left-padded with zeros
    quantity           integer  not null,  -- services, -3..3 without 0 (negative: correction)
    amount_eur         decimal(12, 2),
    billing_month      varchar,            -- YYYY-MM
    insurer_code       varchar,
    patient_birth_year integer,
    patient_sex        varchar,            -- M | F | U (unknown)
    pharmacy_postcode  varchar,
    prescriber_id      varchar,
    primary key (fingerprint, occurrence)
);

-- BZRA lines (SPEC §14): lines whose ATC (the export's `atc` column, else the product
-- reference by CNK) is under N05BA, N05CD or N05CF, and clonazepam (N03AE01) lines, kept apart.
-- The same row checks and idempotency as billing_lines; the fingerprint covers the ATC too.
create table if not exists bzra_lines (
    fingerprint        uhugeint not null,
    occurrence         integer  not null,
    load_id            integer  not null,
    line_number        bigint   not null,
    patient_id         varchar  not null,
    pharmacy_id        varchar  not null,
    delivery_date      date     not null,
    cnk                varchar  not null,
    atc                varchar  not null,  -- upper case, e.g. N05BA01
    quantity           integer  not null,  -- packs, -3..3 without 0 (negative: correction)
    primary key (fingerprint, occurrence)
);

-- The product reference (`benzo-monitor reference load`): CNK -> ATC of medicines, used for
-- the lines of exports without an `atc` column. Loading a file replaces the rows of its CNKs.
create table if not exists product_reference (
    cnk            varchar primary key,  -- 7 digits
    atc            varchar not null,     -- upper case
    substance      varchar,
    strength_mg    decimal(10, 3),
    units_per_pack integer,
    file_name      varchar not null,
    loaded_at      timestamp not null
);

-- Rows that failed a row check, kept with their raw values and the reason.
create table if not exists rejects (
    load_id      integer not null,
    file_name    varchar not null,
    file_sha256  varchar not null,
    line_number  bigint  not null,
    reason       varchar not null,  -- a stable code, see etl/validate.py
    detail       varchar,           -- the human-readable explanation
    raw_values   varchar            -- JSON object: the file's header -> raw text
);

-- The report archive: one row per monthly report pack issued (xlsx, html or pdf) by
-- `benzo-monitor report`, written by etl/outputs/pack.py. What is needed to write the same pack again:
-- the lines it saw (load_id <= max_load_id), its as-of date, its language and the configuration
-- in force. content_sha256 is the hash of the pack's data tables (not of the file's bytes:
-- xlsx and pdf files embed timestamps).
create table if not exists report_archive (
    report_id       integer primary key,
    month           varchar not null,   -- the month reported, YYYY-MM
    as_of_date      date not null,
    lang            varchar not null,   -- fr | nl | en
    format          varchar not null,   -- xlsx | html | pdf
    suppressed      boolean not null,   -- disclosure control (SPEC §9) applied
    max_load_id     integer,            -- the latest load the pack saw (null: none)
    load_ids        integer[],          -- the loads the pack saw
    config          json not null,      -- the configuration in force (etl.outputs.pack.config_to_dict)
    content_sha256  varchar not null,   -- SHA-256 of the pack's data tables
    issued_at       timestamp not null,
    issued_by       varchar
);
