package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/web"
)

// TestPreviewFlowOnNamedConnection: previewing a flow whose source reads a
// named connection counts its records with the process's resources (the web
// process used to build connectors with none, so such a preview failed).
func TestPreviewFlowOnNamedConnection(t *testing.T) {
	ctx := context.Background()
	replicaURL := testenv.SQLiteURL(t)
	replica, err := sqlstore.OpenDB(ctx, replicaURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := replica.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := replica.Exec("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)").Error; err != nil {
		t.Fatal(err)
	}
	if err := replica.Exec("INSERT INTO items (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')").Error; err != nil {
		t.Fatal(err)
	}
	app, err := sqlstore.OpenDB(ctx, testenv.SQLiteURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := app.DB(); err == nil {
			sqlDB.Close()
		}
	})
	reg := engine.NewRegistry()
	job, err := flows.New(flows.Flow{
		Name:   "replica_items",
		Source: &sqlconn.Source{Connection: "replica", Table: "items"},
		Sink:   &sqlconn.Sink{Table: "items_copy", Mode: sqlconn.Upsert, Key: []string{"id"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(job); err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	res := engine.NewResources(app, map[string]string{"replica": replicaURL}, nil)
	t.Cleanup(func() { res.Close() })
	h, err := web.Handler(web.Options{Store: st, Registry: reg, DB: app, Resources: res, Auth: web.Auth{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for range 2 { // the second preview reuses the connection the first opened
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/definitions/replica_items/preview?batch_size=2", nil))
		var pv api.Preview
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &pv) != nil || pv.Records != 3 || pv.Batches != 2 {
			t.Fatalf("preview: %d %s; want 3 records in 2 batches", rec.Code, rec.Body)
		}
	}
}
