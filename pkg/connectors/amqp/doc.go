// Package amqp is the RabbitMQ (AMQP 0.9.1) connector of flows, registered
// as kind "amqp".
//
// Its Source reads a RabbitMQ stream queue (x-queue-type=stream, RabbitMQ
// 3.9 or later) as an offset source: positions are stream offsets. The
// scheduler plans the next range by consuming from the offset after lo
// until it has seen a batch size of messages, or until none arrives for
// Wait (the stream's end, for now); a worker reads (lo, hi] by consuming
// from lo+1 up to hi, so a retried batch reads the same messages — unless
// the stream's retention (max age, max length) removed them in between. A
// stream consumer takes nothing from the stream, so there is nothing to
// acknowledge after the checkpoint: other consumers of the stream are not
// affected. A record is the message's JSON object body (or its body as a
// string under "data" when it is not one, or when Decode is "raw"), plus
// its offset under "_offset" and its message id, when it has one, under
// "_message_id". Classic and quorum queues cannot be read this way (reading
// them consumes them), and are refused.
//
// Its Sink publishes each record as a persistent JSON message to an
// exchange with a routing key, mandatory (a message no queue takes fails
// the batch), with publisher confirms: a batch succeeds only once the
// broker confirmed every message. Each message's message-id property is the
// record's message id (Batch.RecordID), the same on every attempt of the
// batch. RabbitMQ itself does not deduplicate: a batch retried after a
// crash between publishing and its checkpoint publishes again, so the
// guarantee is at-least-once, and consumers that need effectively-once
// dedupe on message-id.
//
// Both use a named connection holding an amqp:// (or amqps://) URL; the
// default is "amqp".
package amqp
