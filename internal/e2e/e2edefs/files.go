package e2edefs

import (
	"os"
	"path/filepath"
	"time"

	"github.com/dripflow/dripflow/pkg/connectors/file"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// FilesDirEnv names the environment variable that gives e2e_files its
// output directory (default: dripflow-e2e-files in the temporary
// directory). Processes read it when they start.
const FilesDirEnv = "DRIPFLOW_E2E_FILES_DIR"

func filesDir() string {
	if d := os.Getenv(FilesDirEnv); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "dripflow-e2e-files")
}

// Files exports every item into JSONL files, 200 records a file, slowly
// enough (30 ms every 100 items) that a killed worker interrupts batches.
var Files = flows.MustRegister(flows.Flow{
	Name:   "e2e_files",
	Source: &sqlconn.Source{Table: "e2e_items", Columns: []string{"id", "val"}},
	Transforms: []flows.Transform{flows.Map("slow", func(r flows.Record) (flows.Record, error) {
		if id, ok := r["id"].(int64); ok && id%100 == 0 {
			time.Sleep(30 * time.Millisecond)
		}
		return r, nil
	})},
	Sink:    &file.Sink{Dir: filesDir(), Format: file.JSONL, MaxRecords: 200},
	Options: flows.Options{BatchSize: 500},
})
