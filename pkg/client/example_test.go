package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
)

// fakeAPI stands in for dripflow's web server: it creates run 7 of
// add_default_role_to_users, shows it half done, and refuses unknown
// definitions the way the API does.
func fakeAPI() *httptest.Server {
	run := api.Run{
		ID: "7", Definition: "add_default_role_to_users", Kind: "backfill", Status: "running",
		Params: json.RawMessage(`{"role":"member"}`), CreatedBy: "erin",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Progress: api.Progress{Total: 10000, Processed: 5000, Percent: 50,
			Batches: map[string]int64{"succeeded": 5, "running": 2, "pending": 3}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateRun
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		if req.Definition != run.Definition {
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(api.Error{Error: api.ErrorDetail{Code: api.CodeInvalid,
				Message: fmt.Sprintf("no definition named %q", req.Definition), Field: "definition"}})
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(run)
	})
	mux.HandleFunc("GET /api/v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(run)
	})
	return httptest.NewServer(mux)
}

func Example() {
	srv := fakeAPI()
	defer srv.Close()
	ctx := context.Background()

	c := client.New(srv.URL, "operator-token")
	run, err := c.CreateRun(ctx, api.CreateRun{Definition: "add_default_role_to_users", Params: json.RawMessage(`{"role":"member"}`)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created run", run.ID, "of", run.Definition)

	run, err = c.Run(ctx, run.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := run.Progress
	fmt.Printf("%s: %.0f%% (%d of %d rows), %d batches succeeded\n", run.Status, p.Percent, p.Processed, p.Total, p.Batches["succeeded"])
	// Output:
	// created run 7 of add_default_role_to_users
	// running: 50% (5000 of 10000 rows), 5 batches succeeded
}

// An error answer of the API is a *client.Error with its status, code and
// the field it is about.
func ExampleError() {
	srv := fakeAPI()
	defer srv.Close()

	_, err := client.New(srv.URL, "operator-token").CreateRun(context.Background(), api.CreateRun{Definition: "no_such_backfill"})
	fmt.Println(err)
	fmt.Println(client.IsStatus(err, http.StatusUnprocessableEntity))
	// Output:
	// no definition named "no_such_backfill" (422 invalid, field definition)
	// true
}
