// Package httpconn is dripflow's "http" connector: a sink that POSTs each
// batch as JSON to a URL with an idempotency key (the batch's stable id),
// retrying server errors, 429 and network errors with exponential backoff
// and jitter.
//
// Importing the package registers the kind "http" with flows.
package httpconn
