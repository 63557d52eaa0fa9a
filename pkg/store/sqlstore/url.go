package sqlstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// acceptedSchemes is what an error about a bad database URL tells the user.
const acceptedSchemes = "postgres://, postgresql://, mysql:// or sqlite://"

// sqlitePragmas are run on every SQLite connection, busy_timeout first so the
// others wait for a lock rather than fail.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"foreign_keys(1)",
	"synchronous(NORMAL)",
}

// target is a parsed database URL.
type target struct {
	dialect   dialect
	dialector gorm.Dialector
	// dsn is what the driver gets, for tests; it may hold a password.
	dsn string
}

// parseURL turns a database URL into a gorm dialector. Errors never repeat
// the URL, which may carry a password.
func parseURL(raw string) (target, error) {
	if raw == "" {
		return target{}, fmt.Errorf("database URL is empty: want %s", acceptedSchemes)
	}
	scheme, _, ok := strings.Cut(raw, ":")
	if !ok {
		return target{}, fmt.Errorf("database URL has no scheme: want %s", acceptedSchemes)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if !strings.HasPrefix(raw[len(scheme):], "://") {
			return target{}, fmt.Errorf("PostgreSQL URL must look like postgres://user:pass@host:port/db")
		}
		return target{dialect: dialectPostgres, dialector: postgres.Open(raw), dsn: raw}, nil
	case "mysql":
		dsn, err := mysqlDSN(raw)
		if err != nil {
			return target{}, err
		}
		return target{dialect: dialectMySQL, dialector: gormmysql.Open(dsn), dsn: dsn}, nil
	case "sqlite":
		dsn, err := sqliteDSN(raw)
		if err != nil {
			return target{}, err
		}
		return target{dialect: dialectSQLite, dialector: sqlite.Open(dsn), dsn: dsn}, nil
	}
	return target{}, fmt.Errorf("unsupported database URL scheme %q: want %s", scheme, acceptedSchemes)
}

// mysqlDSN translates mysql://user:pass@host:port/db?opts into a
// go-sql-driver DSN. Options the driver knows (tls, timeout, …) pass through;
// parseTime, loc, multiStatements and the character set are always the
// store's.
func mysqlDSN(raw string) (string, error) {
	const form = "MySQL URL must look like mysql://user:pass@host:port/db"
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New(form + ": it does not parse")
	}
	if u.Opaque != "" || u.Host == "" {
		return "", errors.New(form + ": host is missing")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return "", errors.New(form + ": database name is missing")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	// Let the driver parse the options, so unknown or malformed ones are
	// reported the way the driver documents them.
	base := mysql.NewConfig()
	base.Net = "tcp"
	base.Addr = addr
	base.DBName = db
	dsn := base.FormatDSN()
	if u.RawQuery != "" {
		if strings.Contains(dsn, "?") {
			dsn += "&" + u.RawQuery
		} else {
			dsn += "?" + u.RawQuery
		}
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("MySQL URL options: %w", err)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.MultiStatements = false
	cfg.Collation = "utf8mb4_general_ci"
	// Placeholders are interpolated client-side (safe with utf8mb4), saving
	// a prepare round trip per statement.
	cfg.InterpolateParams = true
	delete(cfg.Params, "charset")
	return cfg.FormatDSN(), nil
}

// sqliteDSN translates sqlite:///abs/path.db or sqlite://relative.db into a
// glebarez/go-sqlite DSN with the store's pragmas and IMMEDIATE transactions.
// Query parameters of the URL are appended, so a user may add pragmas.
func sqliteDSN(raw string) (string, error) {
	const form = "SQLite URL must look like sqlite:///absolute/path.db or sqlite://relative/path.db"
	rest, ok := strings.CutPrefix(raw, raw[:len("sqlite")]+"://")
	if !ok {
		return "", errors.New(form)
	}
	path, query, _ := strings.Cut(rest, "?")
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return "", errors.New(form)
	}
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	q := url.Values{}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p)
	}
	// Every transaction takes the write lock when it begins, so two
	// transactions can never both hold a read lock and wait to write.
	q.Set("_txlock", "immediate")
	dsn := path + "?" + q.Encode()
	if query != "" {
		extra, err := url.ParseQuery(query)
		if err != nil {
			return "", fmt.Errorf("SQLite URL options: %w", err)
		}
		// The driver stops reading options at _time_format, and the store
		// depends on _txlock being immediate.
		for _, k := range []string{"_txlock", "_time_format"} {
			if extra.Has(k) {
				return "", fmt.Errorf("SQLite URL option %s is set by the store and may not be given", k)
			}
		}
		dsn += "&" + query
	}
	return dsn, nil
}
