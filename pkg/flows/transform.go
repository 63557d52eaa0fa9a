package flows

import "context"

// Transform turns one record into zero (filtered out), one or many (Fn),
// or a batch's records into others (Batch, for transforms that look at
// several records, such as dedupe). Exactly one of Fn and Batch is set.
type Transform struct {
	Name  string
	Fn    func(ctx context.Context, r Record) ([]Record, error)
	Batch func(ctx context.Context, rs []Record) ([]Record, error)
}

// apply runs the transform over a batch's records.
func (t Transform) apply(ctx context.Context, recs []Record) ([]Record, error) {
	if t.Batch != nil {
		return t.Batch(ctx, recs)
	}
	next := recs[:0:0]
	for _, r := range recs {
		out, err := t.Fn(ctx, r)
		if err != nil {
			return nil, err
		}
		next = append(next, out...)
	}
	return next, nil
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
