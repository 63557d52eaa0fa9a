package sqlstore

import (
	"net/url"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		dialect dialect
		// dsn checks the driver DSN; nil means no check beyond the dialect.
		dsn func(t *testing.T, dsn string)
		// wantErr is a substring of the error; "" means no error.
		wantErr string
	}{
		{name: "postgres", url: "postgres://u:p@db:5432/app?sslmode=disable", dialect: dialectPostgres,
			dsn: func(t *testing.T, dsn string) {
				if dsn != "postgres://u:p@db:5432/app?sslmode=disable" {
					t.Errorf("dsn %q, want the URL unchanged", dsn)
				}
			}},
		{name: "postgresql", url: "postgresql://db/app", dialect: dialectPostgres},
		{name: "postgres upper case scheme", url: "POSTGRES://db/app", dialect: dialectPostgres},
		{name: "mysql", url: "mysql://root:s3cret@db:3307/app", dialect: dialectMySQL,
			dsn: func(t *testing.T, dsn string) {
				cfg, err := mysql.ParseDSN(dsn)
				if err != nil {
					t.Fatalf("driver rejects the DSN %q: %v", dsn, err)
				}
				if cfg.User != "root" || cfg.Passwd != "s3cret" || cfg.Addr != "db:3307" || cfg.DBName != "app" || cfg.Net != "tcp" {
					t.Errorf("user/password/addr/db = %q/%q/%q/%q", cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName)
				}
				if !cfg.ParseTime || cfg.Loc.String() != "UTC" || cfg.MultiStatements {
					t.Errorf("parseTime %v loc %v multiStatements %v, want true UTC false", cfg.ParseTime, cfg.Loc, cfg.MultiStatements)
				}
				if !strings.HasPrefix(cfg.Collation, "utf8mb4") {
					t.Errorf("collation %q, want utf8mb4", cfg.Collation)
				}
			}},
		{name: "mysql default port and options", url: "mysql://app@db/app?timeout=5s&tls=skip-verify&multiStatements=true&parseTime=false", dialect: dialectMySQL,
			dsn: func(t *testing.T, dsn string) {
				cfg, err := mysql.ParseDSN(dsn)
				if err != nil {
					t.Fatalf("driver rejects the DSN %q: %v", dsn, err)
				}
				if cfg.Addr != "db:3306" || cfg.Timeout.String() != "5s" || cfg.TLSConfig != "skip-verify" {
					t.Errorf("addr %q timeout %s tls %q", cfg.Addr, cfg.Timeout, cfg.TLSConfig)
				}
				if !cfg.ParseTime || cfg.MultiStatements {
					t.Errorf("the URL overrode parseTime/multiStatements: %v/%v", cfg.ParseTime, cfg.MultiStatements)
				}
			}},
		{name: "mysql escaped password", url: "mysql://u:p%40ss%2Fw@db/app", dialect: dialectMySQL,
			dsn: func(t *testing.T, dsn string) {
				cfg, err := mysql.ParseDSN(dsn)
				if err != nil || cfg.Passwd != "p@ss/w" {
					t.Errorf("password %q (%v), want p@ss/w", cfg.Passwd, err)
				}
			}},
		{name: "sqlite absolute", url: "sqlite:///var/lib/dripflow/store.db", dialect: dialectSQLite,
			dsn: func(t *testing.T, dsn string) {
				path, query, _ := strings.Cut(dsn, "?")
				if path != "/var/lib/dripflow/store.db" {
					t.Errorf("path %q", path)
				}
				q, err := url.ParseQuery(query)
				if err != nil {
					t.Fatal(err)
				}
				if q.Get("_txlock") != "immediate" {
					t.Errorf("_txlock %q, want immediate", q.Get("_txlock"))
				}
				pragmas := strings.Join(q["_pragma"], " ")
				for _, want := range []string{"busy_timeout", "journal_mode(WAL)", "foreign_keys(1)"} {
					if !strings.Contains(pragmas, want) {
						t.Errorf("pragmas %q lack %s", pragmas, want)
					}
				}
			}},
		{name: "sqlite relative", url: "sqlite://data/store.db", dialect: dialectSQLite,
			dsn: func(t *testing.T, dsn string) {
				if !strings.HasPrefix(dsn, "data/store.db?") {
					t.Errorf("dsn %q, want the relative path", dsn)
				}
			}},
		{name: "sqlite extra pragma", url: "sqlite:///tmp/x.db?_pragma=cache_size(-20000)", dialect: dialectSQLite,
			dsn: func(t *testing.T, dsn string) {
				if !strings.HasSuffix(dsn, "&_pragma=cache_size(-20000)") {
					t.Errorf("dsn %q, want the extra pragma appended", dsn)
				}
			}},

		{name: "empty", url: "", wantErr: "empty"},
		{name: "no scheme", url: "/tmp/store.db", wantErr: "no scheme"},
		{name: "unknown scheme", url: "redis://localhost:6379", wantErr: `unsupported database URL scheme "redis": want postgres://, postgresql://, mysql:// or sqlite://`},
		{name: "file scheme", url: "file:///tmp/x.db", wantErr: "mysql:// or sqlite://"},
		{name: "postgres without slashes", url: "postgres:db", wantErr: "postgres://user:pass@host:port/db"},
		{name: "mysql without database", url: "mysql://root:pw@db:3306/", wantErr: "database name is missing"},
		{name: "mysql without host", url: "mysql:///app", wantErr: "host is missing"},
		{name: "mysql bad option", url: "mysql://root@db/app?timeout=soon", wantErr: "MySQL URL options"},
		{name: "sqlite memory", url: "sqlite::memory:", wantErr: "sqlite:///absolute/path.db"},
		{name: "sqlite empty path", url: "sqlite://", wantErr: "sqlite:///absolute/path.db"},
		{name: "sqlite one slash", url: "sqlite:/tmp/x.db", wantErr: "sqlite:///absolute/path.db"},
		{name: "sqlite txlock override", url: "sqlite:///tmp/x.db?_txlock=deferred", wantErr: "_txlock is set by the store"},
		{name: "sqlite time format", url: "sqlite:///tmp/x.db?_time_format=sqlite", wantErr: "_time_format is set by the store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseURL(tt.url)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("parseURL(%q) = %s, want an error containing %q", tt.url, got.dialect, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseURL(%q) error %q, want it to contain %q", tt.url, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseURL(%q): %v", tt.url, err)
			}
			if got.dialect != tt.dialect || got.dialector == nil {
				t.Fatalf("parseURL(%q): dialect %q (dialector %v), want %q", tt.url, got.dialect, got.dialector, tt.dialect)
			}
			if got.dialector.Name() != string(tt.dialect) {
				t.Errorf("gorm dialector %q, want %q", got.dialector.Name(), tt.dialect)
			}
			if tt.dsn != nil {
				tt.dsn(t, got.dsn)
			}
		})
	}
}

// An error about a URL never repeats a password it carries.
func TestParseURLKeepsPasswordsOutOfErrors(t *testing.T) {
	for _, raw := range []string{
		"mysql://root:hunter2@db:3306/",
		"mysql://root:hunter2@db/app?timeout=soon",
		"redis://:hunter2@localhost:6379",
		"postgres:hunter2@db",
		"mysql://root:hunter2@[::1/app",
	} {
		_, err := parseURL(raw)
		if err == nil {
			t.Errorf("parseURL(%q) accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseURL(%q) error %q shows the password", raw, err)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"postgres://db/app", "mysql://u:p@h:1/d?x=y", "sqlite:///a.db", "sqlite://b.db?_pragma=x", "", "::", "mysql://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseURL(raw)
		if err == nil && got.dialector == nil {
			t.Fatalf("parseURL(%q) returned no dialector and no error", raw)
		}
	})
}
