// Package nats is the NATS JetStream connector of flows, registered as kind
// "nats".
//
// Its Source is an offset source over a stream: positions are stream
// sequence numbers. The scheduler plans the next range of at most a batch
// size of messages matching Subject (a filter; empty means the whole
// stream) with a short-lived ephemeral consumer that receives headers only;
// a worker reads (lo, hi] with an ephemeral consumer starting at lo+1 and
// stops at hi, so a retried batch reads the same messages — unless the
// stream's limits (max age, max messages, discard) removed them in between.
// A record is the message's JSON object (or its payload as a string under
// "data" when it is not one, or when Decode is "raw"), plus its stream
// sequence under "_seq" and its subject under "_subject".
//
// With a Durable, the source keeps a durable pull consumer (ack policy
// "all", headers only) in step with the flow so that `nats consumer info`
// shows dripflow's progress: once a batch's checkpoint has committed, the
// durable is acknowledged up to the batch's last message. Its ack floor is
// thus the end of the latest committed batch; with more than one batch in
// flight an earlier batch may still be running, so the floor can be ahead of
// what has committed by up to max_in_flight-1 batches. dripflow never reads
// the durable to decide what to read: the store's watermark says where a run
// starts.
//
// Its Sink publishes each record as JSON to a subject with the Nats-Msg-Id
// header set to the record's message id and waits for every publish
// acknowledgement. JetStream drops a message whose id it has seen within the
// stream's duplicate window (2 minutes unless the stream says otherwise), so
// a batch redelivered within the window publishes nothing twice. Guarantee:
// idempotent within the duplicate window; a batch retried after it (a long
// outage) may publish duplicates.
//
// Both use a named connection holding a nats:// URL; the default is "nats".
package nats
