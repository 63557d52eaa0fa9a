// Package connectortest holds the conformance suites of connectors, run by
// each connector's tests against its real service: RunOffset for offset
// sources (every one plans and reads ranges the same way) and
// RunIdempotentSink for sinks that promise flows.Idempotent (a redelivered
// batch changes nothing).
package connectortest
