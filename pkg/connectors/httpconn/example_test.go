package httpconn_test

import (
	"fmt"
	"time"

	"github.com/dripflow/dripflow/pkg/connectors/httpconn"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Changed customers pushed every minute to a CRM's bulk endpoint, 100 a
// request, with a bearer token read from the worker's environment.
func Example() {
	f := flows.Flow{
		Name:   "customers_to_crm",
		Source: &sqlconn.Source{Table: "customers", Columns: []string{"id", "email", "name", "updated_at"}, Cursor: []string{"updated_at", "id"}},
		Sink: &httpconn.Sink{
			URL:        "https://crm.example.com/api/v2/contacts/bulk",
			Headers:    map[string]string{"Authorization": "$env:CRM_TOKEN"},
			MaxRecords: 100,
			Timeout:    "15s",
		},
		Runtime: flows.Heartbeat{Interval: time.Minute},
	}
	if _, err := flows.New(f); err != nil {
		fmt.Println(err)
	}
	fmt.Println(f.Sink.Kind(), f.Sink.Guarantee())
	// Output: http idempotent
}
