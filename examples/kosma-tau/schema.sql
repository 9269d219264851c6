-- pdr_model_jobs: the job table of pdr_run, the Python driver of the KOSMA-tau PDR code.
--
-- Column list copied from the SQLAlchemy model PDRModelJob in
--   github.com/markusroellig/pdr_run, file pdr_run/database/models.py
-- (the version with the run_status_* and uvcont_* columns), in declaration order, translated
-- to SQLite types:
--   Integer -> INTEGER        String/Text -> TEXT        Float -> REAL
--   Boolean -> INTEGER (0/1)  DateTime -> TEXT ('YYYY-MM-DD HH:MM:SS')
--   Interval -> TEXT (SQLAlchemy stores it on SQLite as a date-time offset from the epoch)
-- Foreign keys (model_names, users, kosmatau_parameters, kosmatau_executables,
-- chemical_databases) are plain INTEGER columns: this example has only the job table.
--
-- pdr_run's status values: 'pending' (created), 'running' (PDR code started), 'finished' or
-- 'problem' (exit status of the PDR code), 'skipped' (model already in the grid),
-- 'ERROR'/'exception' (driver failure).  jobpub reads the row of a job whose outputs are still in
-- its work directory and sets status to the manifest's published-status when it is done.
--
-- The output_* / input_* / log_file columns hold where pdr_run copied each file
-- (<model path>/pdrgrid/... in pdr_run; the remote URL when jobpub publishes).

CREATE TABLE pdr_model_jobs (
    id                                INTEGER PRIMARY KEY,
    model_name_id                     INTEGER,              -- -> model_names.id
    model_job_name                    TEXT NOT NULL,        -- e.g. 100_40_10_20_00
    user_id                           INTEGER,              -- -> users.id
    kosmatau_parameters_id            INTEGER,              -- -> kosmatau_parameters.id
    kosmatau_executable_id            INTEGER,              -- -> kosmatau_executables.id
    chemical_database_id              INTEGER,              -- -> chemical_databases.id

    -- job status
    pending                           INTEGER DEFAULT 1,    -- Boolean
    active                            INTEGER DEFAULT 0,    -- Boolean
    status                            TEXT DEFAULT 'pending',
    time_of_start                     TEXT,                 -- DateTime
    time_of_finish                    TEXT,                 -- DateTime
    execution_time                    TEXT,                 -- Interval
    token                             TEXT,

    -- output files
    output_directory                  TEXT,
    output_hdf4_file                  TEXT,                 -- pdrgrid/pdr<job>.hdf
    output_textout_file               TEXT,                 -- pdrgrid/TEXTOUT<job>
    output_chemchk_file               TEXT,                 -- pdrgrid/chemchk<job>.out
    output_mcdrt_zip_file             TEXT,                 -- pdrgrid/MCDRT<job>.tar.gz (Out/)
    output_ctrl_ind_file              TEXT,                 -- pdrgrid/CTRL_IND<job>
    output_hdf5_file                  TEXT,
    input_pdrnew_inp_file             TEXT,                 -- pdrgrid/PDRNEW<job>.INP
    input_json_file                   TEXT,                 -- pdrgrid/pdr_config<job>.json
    output_json_file                  TEXT,
    log_file                          TEXT,                 -- pdr_run: same as output_textout_file
    -- models.py declares onion_species twice (Text, then String(255)); the second one wins and
    -- SQLAlchemy orders columns by creation, hence its place here.  Whitespace-separated species.
    onion_species                     TEXT,
    time_created                      TEXT DEFAULT CURRENT_TIMESTAMP,  -- server_default now()
    time_updated                      TEXT,                 -- onupdate now()

    -- run status, from pdroutput/run_status.json or the TEXTOUT convergence line
    run_status_converged              TEXT,
    run_status_global_iterations      INTEGER,
    run_status_eps_final              REAL,
    run_status_tsearch_flagged_shells INTEGER,
    run_status_chem_relaxed_calls     INTEGER,
    run_status_deferred_iterations    INTEGER,
    run_status_code_version           TEXT,
    run_status_git_hash               TEXT,

    -- UV H2 dissociation continuum post-processing
    uvcont_applied                    INTEGER,              -- Boolean
    uvcont_closure_ok                 INTEGER,              -- Boolean
    uvcont_error                      TEXT
);
