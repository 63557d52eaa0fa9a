package tasks

// EncodeForBench is the payload encoding EnqueueBatch writes.
func EncodeForBench(p BatchPayload) []byte {
	b, err := jsonPayload(p)
	if err != nil {
		panic(err)
	}
	return b
}
