package sqlstore

// Table names. Every table of the store starts with dripflow_.
const (
	migrationsTable  = "dripflow_schema_migrations"
	runsTable        = "dripflow_runs"
	batchesTable     = "dripflow_batches"
	definitionsTable = "dripflow_definitions"
	flowsTable       = "dripflow_flows"
	countersTable    = "dripflow_run_counters"
	specsTable       = "dripflow_flow_specs"
	eventsTable      = "dripflow_run_events"
)

// SchemaVersion is the version of the schema this binary reads and writes:
// the highest migration it knows.
const SchemaVersion = 7

// migration is one versioned schema change, written out per dialect. On
// PostgreSQL and SQLite a migration runs in one transaction with the row that
// records it; MySQL commits every DDL statement on its own, so its
// statements are written to be re-runnable (IF NOT EXISTS).
type migration struct {
	version int64
	name    string
	up      map[dialect][]string
}

// migrations lists every migration in version order; SchemaVersion is the
// last one's version.
var migrations = []migration{
	{version: 1, name: "runs, batches, definitions and flows", up: map[dialect][]string{
		dialectPostgres: v1Postgres,
		dialectMySQL:    v1MySQL,
		dialectSQLite:   v1SQLite,
	}},
	{version: 2, name: "run counters in slots (batches of a run no longer share one row lock)", up: map[dialect][]string{
		dialectPostgres: v2(dialectPostgres),
		dialectMySQL:    v2(dialectMySQL),
		dialectSQLite:   v2(dialectSQLite),
	}},
	{version: 3, name: "flows stored as specs (versions, origin), one live run per flow, missed ticks", up: map[dialect][]string{
		dialectPostgres: v3Postgres,
		dialectMySQL:    v3MySQL,
		dialectSQLite:   v3SQLite,
	}},
	{version: 4, name: "run timelines (dripflow_run_events)", up: map[dialect][]string{
		dialectPostgres: v4Postgres,
		dialectMySQL:    v4MySQL,
		dialectSQLite:   v4SQLite,
	}},
	{version: 5, name: "runs listed by kind (backfill or flow)", up: map[dialect][]string{
		dialectPostgres: v5,
		dialectMySQL:    v5,
		dialectSQLite:   v5,
	}},
	{version: 6, name: "adaptive batch size: a run's target and bounds, each batch's planned size", up: map[dialect][]string{
		dialectPostgres: v6,
		dialectMySQL:    v6,
		dialectSQLite:   v6,
	}},
	{version: 7, name: "runs' database health checks and holds", up: map[dialect][]string{
		dialectPostgres: v7Postgres,
		dialectMySQL:    v7MySQL,
		dialectSQLite:   v7SQLite,
	}},
}

// v6 adds the adaptive batch size: a run's target batch duration and its
// size bounds (0: off, defaults), and the size each batch was planned with
// (0 for the batches planned before). One column per statement, so each
// dialect takes them as written and an interrupted MySQL migration runs
// again (see alreadyApplied).
var v6 = []string{
	`ALTER TABLE dripflow_runs ADD COLUMN target_batch_ns BIGINT NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_runs ADD COLUMN min_batch_size INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_runs ADD COLUMN max_batch_size INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_batches ADD COLUMN planned_size INTEGER NOT NULL DEFAULT 0`,
}

// v4 adds the runs' timelines: events numbered 1, 2, … per run, deleted
// with their run. event_key is NULL for an event without a key, so the
// unique index allows any number of those and one event per (run, key)
// (every dialect treats NULLs as distinct there).
var v4Postgres = []string{
	`CREATE TABLE dripflow_run_events (
	run_id BIGINT NOT NULL REFERENCES dripflow_runs (id) ON DELETE CASCADE,
	id BIGINT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	kind VARCHAR(32) NOT NULL,
	actor VARCHAR(200) NOT NULL,
	batch BIGINT NOT NULL,
	message TEXT NOT NULL,
	event_key VARCHAR(200) COLLATE "C" NULL,
	PRIMARY KEY (run_id, id)
)`,
	`CREATE UNIQUE INDEX dripflow_run_events_key ON dripflow_run_events (run_id, event_key)`,
}

var v4MySQL = []string{
	`CREATE TABLE IF NOT EXISTS dripflow_run_events (
	run_id BIGINT NOT NULL,
	id BIGINT NOT NULL,
	created_at DATETIME(6) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	actor VARCHAR(200) NOT NULL,
	batch BIGINT NOT NULL,
	message TEXT NOT NULL,
	event_key VARCHAR(200) NULL,
	PRIMARY KEY (run_id, id),
	UNIQUE INDEX dripflow_run_events_key (run_id, event_key),
	CONSTRAINT dripflow_run_events_run_fk FOREIGN KEY (run_id) REFERENCES dripflow_runs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
}

var v4SQLite = []string{
	`CREATE TABLE dripflow_run_events (
	run_id INTEGER NOT NULL REFERENCES dripflow_runs (id) ON DELETE CASCADE,
	id INTEGER NOT NULL,
	created_at DATETIME NOT NULL,
	kind TEXT NOT NULL,
	actor TEXT NOT NULL,
	batch INTEGER NOT NULL,
	message TEXT NOT NULL,
	event_key TEXT NULL,
	PRIMARY KEY (run_id, id)
) WITHOUT ROWID`,
	`CREATE UNIQUE INDEX dripflow_run_events_key ON dripflow_run_events (run_id, event_key)`,
}

// v5 indexes runs by kind, so listing only backfills (or only flows) reads
// an index range however many runs of the other kind there are: one index
// for the kind alone, one for the kind and a state.
var v5 = []string{
	`CREATE INDEX dripflow_runs_kind_id ON dripflow_runs (kind, id)`,
	`CREATE INDEX dripflow_runs_kind_state_id ON dripflow_runs (kind, state, id)`,
}

// v7 adds a run's database health checks (JSON, NULL for none) and why the
// scheduler holds its planning back (JSON, NULL while it does not).
var v7Postgres = []string{
	`ALTER TABLE dripflow_runs ADD COLUMN health_checks TEXT NULL, ADD COLUMN held TEXT NULL`,
}

// v7MySQL adds one column per statement, so a statement that finds its
// column already there (an interrupted migration run again) is skipped.
var v7MySQL = []string{
	`ALTER TABLE dripflow_runs ADD COLUMN health_checks MEDIUMTEXT NULL`,
	`ALTER TABLE dripflow_runs ADD COLUMN held TEXT NULL`,
}

var v7SQLite = []string{
	`ALTER TABLE dripflow_runs ADD COLUMN health_checks TEXT NULL`,
	`ALTER TABLE dripflow_runs ADD COLUMN held TEXT NULL`,
}

// v3 adds the versions of flows stored as data (dripflow_flow_specs), the
// origin and latest version of a definition (existing ones are code), the
// spec version of a run, a flow's missed ticks, and the index the check for
// a flow's live run reads (definition, state).
var v3Postgres = []string{
	`ALTER TABLE dripflow_definitions ADD COLUMN origin VARCHAR(16) NOT NULL DEFAULT 'code', ADD COLUMN version BIGINT NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_runs ADD COLUMN spec_version BIGINT NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_flows ADD COLUMN missed_ticks BIGINT NOT NULL DEFAULT 0, ADD COLUMN last_missed_tick TIMESTAMPTZ NULL`,
	`CREATE INDEX dripflow_runs_definition_state_id ON dripflow_runs (definition, state, id)`,
	`CREATE TABLE dripflow_flow_specs (
	name VARCHAR(200) COLLATE "C" NOT NULL,
	version BIGINT NOT NULL,
	spec TEXT NOT NULL,
	description TEXT NOT NULL,
	defaults TEXT NULL,
	created_by VARCHAR(200) NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (name, version)
)`,
}

// v3MySQL's statements each change one table; one that finds its change
// already made (an interrupted migration run again) is skipped, see
// alreadyApplied.
var v3MySQL = []string{
	`ALTER TABLE dripflow_definitions ADD COLUMN origin VARCHAR(16) NOT NULL DEFAULT 'code', ADD COLUMN version BIGINT NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_runs ADD COLUMN spec_version BIGINT NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_flows ADD COLUMN missed_ticks BIGINT NOT NULL DEFAULT 0, ADD COLUMN last_missed_tick DATETIME(6) NULL`,
	`CREATE INDEX dripflow_runs_definition_state_id ON dripflow_runs (definition, state, id)`,
	`CREATE TABLE IF NOT EXISTS dripflow_flow_specs (
	name VARCHAR(200) NOT NULL,
	version BIGINT NOT NULL,
	spec MEDIUMTEXT NOT NULL,
	description TEXT NOT NULL,
	defaults MEDIUMTEXT NULL,
	created_by VARCHAR(200) NOT NULL,
	created_at DATETIME(6) NOT NULL,
	PRIMARY KEY (name, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
}

var v3SQLite = []string{
	`ALTER TABLE dripflow_definitions ADD COLUMN origin TEXT NOT NULL DEFAULT 'code'`,
	`ALTER TABLE dripflow_definitions ADD COLUMN version INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_runs ADD COLUMN spec_version INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_flows ADD COLUMN missed_ticks INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE dripflow_flows ADD COLUMN last_missed_tick DATETIME NULL`,
	`CREATE INDEX dripflow_runs_definition_state_id ON dripflow_runs (definition, state, id)`,
	`CREATE TABLE dripflow_flow_specs (
	name TEXT NOT NULL,
	version INTEGER NOT NULL,
	spec TEXT NOT NULL,
	description TEXT NOT NULL,
	defaults TEXT NULL,
	created_by TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (name, version)
) WITHOUT ROWID`,
}

// v2 adds dripflow_run_counters (see counterSlots) and gives every existing
// run its slot rows; the counters already in runs' rows stay there.
func v2(d dialect) []string {
	cols := `
	batches_pending BIGINT NOT NULL DEFAULT 0,
	batches_enqueued BIGINT NOT NULL DEFAULT 0,
	batches_running BIGINT NOT NULL DEFAULT 0,
	batches_succeeded BIGINT NOT NULL DEFAULT 0,
	batches_failed BIGINT NOT NULL DEFAULT 0,
	batches_cancelled BIGINT NOT NULL DEFAULT 0,
	rows_read BIGINT NOT NULL DEFAULT 0,
	rows_written BIGINT NOT NULL DEFAULT 0,
	rows_skipped BIGINT NOT NULL DEFAULT 0,
	updated_us BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, slot)`
	fill := " INTO dripflow_run_counters (run_id, slot) SELECT r.id, s.slot FROM dripflow_runs r CROSS JOIN " + slotValues() + " s"
	switch d {
	case dialectMySQL:
		return []string{
			`CREATE TABLE IF NOT EXISTS dripflow_run_counters (
	run_id BIGINT NOT NULL,
	slot INT NOT NULL,` + cols + `,
	CONSTRAINT dripflow_run_counters_run_fk FOREIGN KEY (run_id) REFERENCES dripflow_runs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
			"INSERT IGNORE" + fill,
		}
	case dialectSQLite:
		return []string{
			`CREATE TABLE dripflow_run_counters (
	run_id INTEGER NOT NULL REFERENCES dripflow_runs (id) ON DELETE CASCADE,
	slot INTEGER NOT NULL,` + cols + `
) WITHOUT ROWID`,
			"INSERT" + fill,
		}
	default:
		return []string{
			`CREATE TABLE dripflow_run_counters (
	run_id BIGINT NOT NULL REFERENCES dripflow_runs (id) ON DELETE CASCADE,
	slot INTEGER NOT NULL,` + cols + `
)`,
			"INSERT" + fill,
		}
	}
}

// bootstrap creates the table that records applied migrations.
var bootstrap = map[dialect]string{
	dialectPostgres: `CREATE TABLE IF NOT EXISTS dripflow_schema_migrations (
	version BIGINT PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL
)`,
	dialectMySQL: `CREATE TABLE IF NOT EXISTS dripflow_schema_migrations (
	version BIGINT NOT NULL PRIMARY KEY,
	applied_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	dialectSQLite: `CREATE TABLE IF NOT EXISTS dripflow_schema_migrations (
	version INTEGER NOT NULL PRIMARY KEY,
	applied_at DATETIME NOT NULL
)`,
}

// PostgreSQL: names sort by byte ("C" collation), as on the other dialects,
// whatever the database's locale.
var v1Postgres = []string{
	`CREATE TABLE dripflow_runs (
	id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	definition VARCHAR(200) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	params JSONB NOT NULL,
	state VARCHAR(16) NOT NULL,
	created_by VARCHAR(200) NOT NULL,
	batch_size INTEGER NOT NULL,
	max_attempts INTEGER NOT NULL,
	max_in_flight INTEGER NOT NULL,
	sleep_ns BIGINT NOT NULL,
	rows_per_second INTEGER NOT NULL,
	batch_timeout_ns BIGINT NOT NULL,
	error_budget INTEGER NOT NULL,
	start_at TIMESTAMPTZ NULL,
	total BIGINT NOT NULL,
	total_estimated BOOLEAN NOT NULL,
	plan_cursor TEXT NOT NULL,
	plan_done BOOLEAN NOT NULL,
	batches_pending BIGINT NOT NULL,
	batches_enqueued BIGINT NOT NULL,
	batches_running BIGINT NOT NULL,
	batches_succeeded BIGINT NOT NULL,
	batches_failed BIGINT NOT NULL,
	batches_cancelled BIGINT NOT NULL,
	rows_read BIGINT NOT NULL,
	rows_written BIGINT NOT NULL,
	rows_skipped BIGINT NOT NULL,
	error TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	started_at TIMESTAMPTZ NULL,
	finished_at TIMESTAMPTZ NULL
)`,
	`CREATE INDEX dripflow_runs_state_id ON dripflow_runs (state, id)`,
	`CREATE INDEX dripflow_runs_definition_id ON dripflow_runs (definition, id)`,
	`CREATE INDEX dripflow_runs_created_by_id ON dripflow_runs (created_by, id)`,
	`CREATE TABLE dripflow_batches (
	run_id BIGINT NOT NULL REFERENCES dripflow_runs (id) ON DELETE CASCADE,
	seq BIGINT NOT NULL,
	state VARCHAR(16) NOT NULL,
	lo TEXT NOT NULL,
	hi TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	retries INTEGER NOT NULL,
	worker TEXT NOT NULL,
	claim_token TEXT NOT NULL,
	lease_until TIMESTAMPTZ NULL,
	rows_read BIGINT NOT NULL,
	rows_written BIGINT NOT NULL,
	rows_skipped BIGINT NOT NULL,
	duration_ns BIGINT NOT NULL,
	error TEXT NOT NULL,
	error_stack TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	enqueued_at TIMESTAMPTZ NULL,
	started_at TIMESTAMPTZ NULL,
	finished_at TIMESTAMPTZ NULL,
	PRIMARY KEY (run_id, seq)
)`,
	`CREATE INDEX dripflow_batches_run_state_seq ON dripflow_batches (run_id, state, seq)`,
	`CREATE TABLE dripflow_definitions (
	name VARCHAR(200) COLLATE "C" PRIMARY KEY,
	kind VARCHAR(16) NOT NULL,
	description TEXT NOT NULL,
	params_schema JSONB NULL,
	defaults JSONB NULL,
	config JSONB NULL,
	updated_at TIMESTAMPTZ NOT NULL
)`,
	`CREATE TABLE dripflow_flows (
	name VARCHAR(200) COLLATE "C" PRIMARY KEY REFERENCES dripflow_definitions (name) ON DELETE CASCADE,
	active BOOLEAN NOT NULL,
	watermark TEXT NOT NULL,
	watermark_updated_at TIMESTAMPTZ NULL,
	updated_at TIMESTAMPTZ NOT NULL
)`,
}

// MySQL/MariaDB: binary collation, so names and cursors compare byte for byte
// whatever the server's default; DATETIME(6) holds UTC.
var v1MySQL = []string{
	`CREATE TABLE IF NOT EXISTS dripflow_runs (
	id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	definition VARCHAR(200) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	params JSON NOT NULL,
	state VARCHAR(16) NOT NULL,
	created_by VARCHAR(200) NOT NULL,
	batch_size INT NOT NULL,
	max_attempts INT NOT NULL,
	max_in_flight INT NOT NULL,
	sleep_ns BIGINT NOT NULL,
	rows_per_second INT NOT NULL,
	batch_timeout_ns BIGINT NOT NULL,
	error_budget INT NOT NULL,
	start_at DATETIME(6) NULL,
	total BIGINT NOT NULL,
	total_estimated BOOLEAN NOT NULL,
	plan_cursor TEXT NOT NULL,
	plan_done BOOLEAN NOT NULL,
	batches_pending BIGINT NOT NULL,
	batches_enqueued BIGINT NOT NULL,
	batches_running BIGINT NOT NULL,
	batches_succeeded BIGINT NOT NULL,
	batches_failed BIGINT NOT NULL,
	batches_cancelled BIGINT NOT NULL,
	rows_read BIGINT NOT NULL,
	rows_written BIGINT NOT NULL,
	rows_skipped BIGINT NOT NULL,
	error MEDIUMTEXT NOT NULL,
	created_at DATETIME(6) NOT NULL,
	updated_at DATETIME(6) NOT NULL,
	started_at DATETIME(6) NULL,
	finished_at DATETIME(6) NULL,
	INDEX dripflow_runs_state_id (state, id),
	INDEX dripflow_runs_definition_id (definition, id),
	INDEX dripflow_runs_created_by_id (created_by, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS dripflow_batches (
	run_id BIGINT NOT NULL,
	seq BIGINT NOT NULL,
	state VARCHAR(16) NOT NULL,
	lo TEXT NOT NULL,
	hi TEXT NOT NULL,
	attempts INT NOT NULL,
	retries INT NOT NULL,
	worker TEXT NOT NULL,
	claim_token TEXT NOT NULL,
	lease_until DATETIME(6) NULL,
	rows_read BIGINT NOT NULL,
	rows_written BIGINT NOT NULL,
	rows_skipped BIGINT NOT NULL,
	duration_ns BIGINT NOT NULL,
	error MEDIUMTEXT NOT NULL,
	error_stack MEDIUMTEXT NOT NULL,
	created_at DATETIME(6) NOT NULL,
	updated_at DATETIME(6) NOT NULL,
	enqueued_at DATETIME(6) NULL,
	started_at DATETIME(6) NULL,
	finished_at DATETIME(6) NULL,
	PRIMARY KEY (run_id, seq),
	INDEX dripflow_batches_run_state_seq (run_id, state, seq),
	CONSTRAINT dripflow_batches_run_fk FOREIGN KEY (run_id) REFERENCES dripflow_runs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS dripflow_definitions (
	name VARCHAR(200) NOT NULL PRIMARY KEY,
	kind VARCHAR(16) NOT NULL,
	description TEXT NOT NULL,
	params_schema JSON NULL,
	defaults JSON NULL,
	config JSON NULL,
	updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS dripflow_flows (
	name VARCHAR(200) NOT NULL PRIMARY KEY,
	active BOOLEAN NOT NULL,
	watermark TEXT NOT NULL,
	watermark_updated_at DATETIME(6) NULL,
	updated_at DATETIME(6) NOT NULL,
	CONSTRAINT dripflow_flows_definition_fk FOREIGN KEY (name) REFERENCES dripflow_definitions (name) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
}

// SQLite: times are written by the driver as text in UTC; AUTOINCREMENT
// keeps run ids from ever being reused.
var v1SQLite = []string{
	`CREATE TABLE dripflow_runs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	definition TEXT NOT NULL,
	kind TEXT NOT NULL,
	params TEXT NOT NULL,
	state TEXT NOT NULL,
	created_by TEXT NOT NULL,
	batch_size INTEGER NOT NULL,
	max_attempts INTEGER NOT NULL,
	max_in_flight INTEGER NOT NULL,
	sleep_ns INTEGER NOT NULL,
	rows_per_second INTEGER NOT NULL,
	batch_timeout_ns INTEGER NOT NULL,
	error_budget INTEGER NOT NULL,
	start_at DATETIME NULL,
	total INTEGER NOT NULL,
	total_estimated BOOLEAN NOT NULL,
	plan_cursor TEXT NOT NULL,
	plan_done BOOLEAN NOT NULL,
	batches_pending INTEGER NOT NULL,
	batches_enqueued INTEGER NOT NULL,
	batches_running INTEGER NOT NULL,
	batches_succeeded INTEGER NOT NULL,
	batches_failed INTEGER NOT NULL,
	batches_cancelled INTEGER NOT NULL,
	rows_read INTEGER NOT NULL,
	rows_written INTEGER NOT NULL,
	rows_skipped INTEGER NOT NULL,
	error TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	started_at DATETIME NULL,
	finished_at DATETIME NULL
)`,
	`CREATE INDEX dripflow_runs_state_id ON dripflow_runs (state, id)`,
	`CREATE INDEX dripflow_runs_definition_id ON dripflow_runs (definition, id)`,
	`CREATE INDEX dripflow_runs_created_by_id ON dripflow_runs (created_by, id)`,
	`CREATE TABLE dripflow_batches (
	run_id INTEGER NOT NULL REFERENCES dripflow_runs (id) ON DELETE CASCADE,
	seq INTEGER NOT NULL,
	state TEXT NOT NULL,
	lo TEXT NOT NULL,
	hi TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	retries INTEGER NOT NULL,
	worker TEXT NOT NULL,
	claim_token TEXT NOT NULL,
	lease_until DATETIME NULL,
	rows_read INTEGER NOT NULL,
	rows_written INTEGER NOT NULL,
	rows_skipped INTEGER NOT NULL,
	duration_ns INTEGER NOT NULL,
	error TEXT NOT NULL,
	error_stack TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	enqueued_at DATETIME NULL,
	started_at DATETIME NULL,
	finished_at DATETIME NULL,
	PRIMARY KEY (run_id, seq)
) WITHOUT ROWID`,
	`CREATE INDEX dripflow_batches_run_state_seq ON dripflow_batches (run_id, state, seq)`,
	`CREATE TABLE dripflow_definitions (
	name TEXT NOT NULL PRIMARY KEY,
	kind TEXT NOT NULL,
	description TEXT NOT NULL,
	params_schema TEXT NULL,
	defaults TEXT NULL,
	config TEXT NULL,
	updated_at DATETIME NOT NULL
)`,
	`CREATE TABLE dripflow_flows (
	name TEXT NOT NULL PRIMARY KEY REFERENCES dripflow_definitions (name) ON DELETE CASCADE,
	active BOOLEAN NOT NULL,
	watermark TEXT NOT NULL,
	watermark_updated_at DATETIME NULL,
	updated_at DATETIME NOT NULL
)`,
}
