package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
)

// fakeFlowsAPI stands in for dripflow's web server: it stores the first
// version of a spec flow, and refuses a spec with an unknown sink kind
// with a 422 naming the field, as the API does.
func fakeFlowsAPI() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/flows", func(w http.ResponseWriter, r *http.Request) {
		var spec struct {
			Name string `json:"name"`
			Sink struct {
				Kind string `json:"kind"`
			} `json:"sink"`
			Runtime string `json:"runtime"`
		}
		json.NewDecoder(r.Body).Decode(&spec)
		w.Header().Set("Content-Type", "application/json")
		if spec.Sink.Kind != "file" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(api.Error{Error: api.ErrorDetail{Code: api.CodeInvalid, Field: "sink.kind",
				Message: fmt.Sprintf("sink.kind: unknown sink connector %q (known: file, sql)", spec.Sink.Kind)}})
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(api.Flow{Name: spec.Name, Origin: api.OriginSpec, Version: 1, Runtime: spec.Runtime})
	})
	return httptest.NewServer(mux)
}

// A flow defined at runtime: its spec is JSON (or YAML sent with
// Content-Type application/yaml), stored at version 1 and inactive.
func ExampleClient_CreateFlow() {
	srv := fakeFlowsAPI()
	defer srv.Close()
	ctx := context.Background()
	c := client.New(srv.URL, "admin-token")

	spec := `{
	  "name": "users_to_jsonl",
	  "source": {"kind": "sql", "settings": {"table": "users", "cursor": ["updated_at", "id"]}},
	  "transforms": [{"type": "select", "fields": ["id", "email"]}],
	  "sink": {"kind": "file", "settings": {"dir": "/var/lib/dripflow/users", "format": "jsonl"}},
	  "runtime": "every 30s"
	}`
	f, err := c.CreateFlow(ctx, json.RawMessage(spec))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Name, f.Origin, "version", f.Version, f.Runtime)

	// A refused spec names the failing field.
	_, err = c.CreateFlow(ctx, json.RawMessage(strings.Replace(spec, `"kind": "file"`, `"kind": "s3"`, 1)))
	var ae *client.Error
	if errors.As(err, &ae) {
		fmt.Println(ae.Status, ae.Field)
	}
	// Output:
	// users_to_jsonl spec version 1 every 30s
	// 422 sink.kind
}
