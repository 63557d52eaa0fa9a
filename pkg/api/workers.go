package api

import "time"

// Reschedule is the body of POST /api/v1/runs/{id}/reschedule.
type Reschedule struct {
	StartAt *time.Time `json:"start_at"`
}

// Worker is one worker of the queue as its heartbeats describe it.
type Worker struct {
	ID          string `json:"id"`
	Queue       string `json:"queue"`
	Concurrency int    `json:"concurrency"`
	// Alive is false once the worker's heartbeat stopped for longer than
	// its TTL; the scheduler then ends its claims and forgets it.
	Alive         bool          `json:"alive"`
	StartedAt     time.Time     `json:"started_at"`
	LastHeartbeat time.Time     `json:"last_heartbeat"`
	Batches       []WorkerBatch `json:"batches"`
}

// WorkerBatch is a batch a worker holds.
type WorkerBatch struct {
	RunID string `json:"run_id"`
	Seq   string `json:"seq"`
}

// Workers is the body of GET /api/v1/workers.
type Workers struct {
	Items []Worker `json:"items"`
}
