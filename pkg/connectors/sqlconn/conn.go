package sqlconn

import (
	"context"
	"fmt"
	"sync"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/sqlres"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Kind is the connector's registered kind name.
const Kind = "sql"

func init() {
	flows.RegisterConnector(flows.Connector{
		Kind:        Kind,
		Description: "SQL tables or gorm models on PostgreSQL, MySQL/MariaDB or SQLite, on any named connection",
		Delivery:    "transactional on the application database with the SQL store; elsewhere upsert, update and insert with a key are idempotent, insert without a key at least once",
		Source:      func() flows.SourceConfig { return &Source{} },
		Sink:        func() flows.SinkConfig { return &Sink{} },
	})
}

// isDefault reports whether a connection name means the application
// database.
func isDefault(name string) bool { return sqlres.IsDefault(name) }

// open returns the gorm handle of the named connection (sqlres.Open).
func open(ctx context.Context, res *engine.Resources, name string) (*gorm.DB, error) {
	return sqlres.Open(ctx, res, name)
}

// Scope narrows a model's query, as a gorm scope does.
type Scope = func(*gorm.DB) *gorm.DB

type model struct {
	value  any
	scopes map[string]Scope
}

var (
	modelsMu sync.RWMutex
	models   = map[string]model{}
)

// RegisterModel makes a gorm model and its named scopes usable by name in
// connector configurations (`{"model": "User", "scope": "active"}`), as
// ActiveDataFlow's ActiveRecordSource(model_class:, scope_name:) did. value
// is a pointer to the model's struct. Register models before the flows that
// name them (declare the RegisterModel variable first). Registering a name
// twice panics.
func RegisterModel(name string, value any, scopes map[string]Scope) struct{} {
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if _, dup := models[name]; dup {
		panic(fmt.Sprintf("sqlconn: model %q registered twice", name))
	}
	s := make(map[string]Scope, len(scopes))
	for k, v := range scopes {
		s[k] = v
	}
	models[name] = model{value: value, scopes: s}
	return struct{}{}
}

func lookupModel(name string) (model, bool) {
	modelsMu.RLock()
	defer modelsMu.RUnlock()
	m, ok := models[name]
	return m, ok
}

func modelNames() []string {
	modelsMu.RLock()
	defer modelsMu.RUnlock()
	var out []string
	for k := range models {
		out = append(out, k)
	}
	return out
}

// tableOf returns the table a registered model maps to on db.
func tableOf(db *gorm.DB, m model) (string, error) {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(m.value); err != nil {
		return "", err
	}
	return stmt.Schema.Table, nil
}
