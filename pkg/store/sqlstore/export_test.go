package sqlstore

// SetMaxEvents sets how many events a run keeps.
func SetMaxEvents(s *Store, n int64) { s.maxEvents = n }
