package flows

import "context"

// Transform turns one record into zero (filtered out), one or many.
type Transform struct {
	Name string
	Fn   func(ctx context.Context, r Record) ([]Record, error)
}

// Map transforms each record into one; a nil result filters it out.
func Map(name string, fn func(Record) (Record, error)) Transform {
	return Transform{Name: name, Fn: func(_ context.Context, r Record) ([]Record, error) {
		out, err := fn(r)
		if err != nil || out == nil {
			return nil, err
		}
		return []Record{out}, nil
	}}
}

// Filter keeps the records for which keep returns true.
func Filter(name string, keep func(Record) bool) Transform {
	return Transform{Name: name, Fn: func(_ context.Context, r Record) ([]Record, error) {
		if keep(r) {
			return []Record{r}, nil
		}
		return nil, nil
	}}
}

// FlatMap transforms each record into any number.
func FlatMap(name string, fn func(Record) ([]Record, error)) Transform {
	return Transform{Name: name, Fn: func(_ context.Context, r Record) ([]Record, error) { return fn(r) }}
}
