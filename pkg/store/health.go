package store

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// HealthKind names what a health check looks at.
type HealthKind string

// Health check kinds.
const (
	// HealthReplicationLag holds planning while replication lags more than
	// MaxSeconds (PostgreSQL: pg_stat_replication on a primary, replay
	// delay on a standby; MySQL/MariaDB: Seconds_Behind_Master/Source).
	HealthReplicationLag HealthKind = "replication_lag"
	// HealthAutovacuum holds planning while an autovacuum works on Table
	// (PostgreSQL only).
	HealthAutovacuum HealthKind = "autovacuum"
	// HealthLockWaits holds planning while more than Max sessions wait for
	// a lock.
	HealthLockWaits HealthKind = "lock_waits"
	// HealthSQL holds planning while Query returns false. Only Go
	// definitions may declare it: arbitrary SQL is never accepted from the
	// API, the UI or flow specs.
	HealthSQL HealthKind = "sql"
)

// HealthKinds lists the kinds in the order the docs give them.
var HealthKinds = []HealthKind{HealthReplicationLag, HealthAutovacuum, HealthLockWaits, HealthSQL}

// Limits of health checks; larger values are refused as bad input.
const (
	MaxHealthChecks      = 10
	MaxHealthLagSeconds  = 86400
	MaxHealthLockWaits   = 100_000
	MaxHealthQuery       = 10_000
	MaxHealthName        = 100
	maxHealthIdentifier  = 63
	maxHealthConnections = 100
)

// HealthCheck is one database health check of a run: while it fails, the
// scheduler enqueues no new batch of the run (batches in flight finish).
// Only the fields of its kind may be set.
type HealthCheck struct {
	Kind HealthKind `json:"kind"`
	// Name labels the check in metrics, the timeline and the UI; default:
	// its kind, with its table or connection (see Label).
	Name string `json:"name,omitempty"`
	// Connection names the database checked (a DRIPFLOW_CONNECTIONS name);
	// empty or "default": the application database.
	Connection string `json:"connection,omitempty"`
	// MaxSeconds is replication_lag's limit (> 0).
	MaxSeconds float64 `json:"max_seconds,omitempty"`
	// Table is autovacuum's table, "name" or "schema.name".
	Table string `json:"table,omitempty"`
	// Max is lock_waits' limit: more waiting sessions than this hold the
	// run (0: any waiter holds it).
	Max int `json:"max,omitempty"`
	// Query is sql's query: one row, one boolean column, true when
	// healthy.
	Query string `json:"query,omitempty"`
}

// Label names the check where it is shown: its Name, else its kind with
// its table and connection ("autovacuum:public.users", "lock_waits@replica").
func (c HealthCheck) Label() string {
	if c.Name != "" {
		return c.Name
	}
	l := string(c.Kind)
	if c.Table != "" {
		l += ":" + c.Table
	}
	if c.Connection != "" && c.Connection != "default" {
		l += "@" + c.Connection
	}
	return l
}

// SameTarget reports whether c and o check the same thing (kind, database
// and table), so that a run's check replaces its definition's.
func (c HealthCheck) SameTarget(o HealthCheck) bool {
	conn := func(s string) string {
		if s == "default" {
			return ""
		}
		return s
	}
	return c.Kind == o.Kind && conn(c.Connection) == conn(o.Connection) && c.Table == o.Table && c.Query == o.Query
}

var (
	healthIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)
	healthConn  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// validate reports the first field of c that is out of range; field names
// start with prefix ("health_checks[0]").
func (c HealthCheck) validate(prefix string) error {
	f := func(name string) string { return prefix + "." + name }
	if len(c.Name) > MaxHealthName {
		return argErr(f("name"), "must be at most %d bytes", MaxHealthName)
	}
	if c.Connection != "" && (len(c.Connection) > maxHealthConnections || !healthConn.MatchString(c.Connection)) {
		return argErr(f("connection"), "must be a connection name (letters, digits, _ . -), got %q", c.Connection)
	}
	// notSet refuses the settings of other kinds, so a typo in the kind
	// does not silently drop a limit.
	notSet := func(set map[string]bool) error {
		for _, name := range []string{"max_seconds", "table", "max", "query"} {
			if set[name] {
				return argErr(f(name), "is not a setting of a %s check", c.Kind)
			}
		}
		return nil
	}
	set := map[string]bool{"max_seconds": c.MaxSeconds != 0, "table": c.Table != "", "max": c.Max != 0, "query": c.Query != ""}
	switch c.Kind {
	case HealthReplicationLag:
		delete(set, "max_seconds")
		if c.MaxSeconds <= 0 || c.MaxSeconds > MaxHealthLagSeconds {
			return argErr(f("max_seconds"), "must be more than 0 and at most %d, got %s", MaxHealthLagSeconds, strconv.FormatFloat(c.MaxSeconds, 'g', -1, 64))
		}
	case HealthAutovacuum:
		delete(set, "table")
		if err := validTable(c.Table); err != nil {
			return argErr(f("table"), "%s", err)
		}
	case HealthLockWaits:
		delete(set, "max")
		if c.Max < 0 || c.Max > MaxHealthLockWaits {
			return argErr(f("max"), "must be between 0 and %d, got %d", MaxHealthLockWaits, c.Max)
		}
	case HealthSQL:
		delete(set, "query")
		if strings.TrimSpace(c.Query) == "" {
			return argErr(f("query"), "must not be empty")
		}
		if len(c.Query) > MaxHealthQuery {
			return argErr(f("query"), "must be at most %d bytes", MaxHealthQuery)
		}
	default:
		return argErr(f("kind"), "must be one of %s, got %q", healthKindList(), c.Kind)
	}
	return notSet(set)
}

// validTable accepts "table" or "schema.table", each an SQL identifier.
func validTable(t string) error {
	if t == "" {
		return fmt.Errorf("must name a table (table or schema.table)")
	}
	parts := strings.Split(t, ".")
	if len(parts) > 2 {
		return fmt.Errorf("must be table or schema.table, got %q", t)
	}
	for _, p := range parts {
		if len(p) > maxHealthIdentifier || !healthIdent.MatchString(p) {
			return fmt.Errorf("must be table or schema.table, each a name of letters, digits, _ and $ (at most %d), got %q", maxHealthIdentifier, t)
		}
	}
	return nil
}

func healthKindList() string {
	s := make([]string, len(HealthKinds))
	for i, k := range HealthKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// ValidateHealthChecks reports the first check that is out of range, naming
// its field ("health_checks[1].max_seconds").
func ValidateHealthChecks(cs []HealthCheck) error {
	if len(cs) > MaxHealthChecks {
		return argErr("health_checks", "must be at most %d checks, got %d", MaxHealthChecks, len(cs))
	}
	for i, c := range cs {
		if err := c.validate(fmt.Sprintf("health_checks[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

// RunHold says why the scheduler holds a running run's planning back: a
// health check fails (or cannot be evaluated). The scheduler records it on
// the run when the hold starts or its reason changes, and clears it when
// the check passes again.
type RunHold struct {
	// Reason is what failed, as people read it: "replication lag 12.3 s > 5 s".
	Reason string `json:"reason"`
	// Check is the failing check's label (HealthCheck.Label).
	Check string `json:"check"`
	// Since is when the hold started.
	Since time.Time `json:"since"`
}

// MaxHoldReason bounds RunHold.Reason in bytes; a longer one is cut.
const MaxHoldReason = 1000

// Normalize cuts an over-long reason and makes Since UTC with microsecond
// precision, as the stores keep it.
func (h RunHold) Normalize() RunHold {
	if len(h.Reason) > MaxHoldReason {
		cut := MaxHoldReason - len("…")
		for cut > 0 && !isRuneStart(h.Reason[cut]) {
			cut--
		}
		h.Reason = h.Reason[:cut] + "…"
	}
	h.Since = h.Since.UTC().Truncate(time.Microsecond)
	return h
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
