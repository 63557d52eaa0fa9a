// Package all registers every connector kind dripflow ships, for binaries
// that must know them all (flows stored as specs name their connectors by
// kind). Import it for its side effect:
//
//	import _ "github.com/dripflow/dripflow/pkg/connectors/all"
package all

import (
	_ "github.com/dripflow/dripflow/pkg/connectors/amqp"        // kind "amqp": RabbitMQ
	_ "github.com/dripflow/dripflow/pkg/connectors/file"        // kind "file": JSONL and CSV files
	_ "github.com/dripflow/dripflow/pkg/connectors/httpconn"    // kind "http": HTTP sink
	_ "github.com/dripflow/dripflow/pkg/connectors/nats"        // kind "nats": NATS JetStream
	_ "github.com/dripflow/dripflow/pkg/connectors/redisstream" // kind "redisstream": Redis streams
	_ "github.com/dripflow/dripflow/pkg/connectors/sqlconn"     // kind "sql": SQL tables and gorm models
)
