package redisstore

import (
	"context"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/store"
)

// listing describes one keyset scan: the index sets to read (merged when
// there are several), the order, where to start, and how to load and filter
// the members.
type listing[T any] struct {
	keys     []string
	desc     bool
	after    int64 // exclusive start, if hasAfter
	hasAfter bool
	limit    int
	load     func(ctx context.Context, ids []int64) ([]T, error) // skips missing members
	match    func(T) bool
	key      func(T) int64
}

// page reads candidates from the indexes in growing rounds, loads and
// filters them, and stops as soon as it has one item more than the page
// holds (which proves a next page exists) or the indexes are exhausted.
func (l listing[T]) page(ctx context.Context, c redis.UniversalClient) (store.Page[T], error) {
	items := make([]T, 0, min(l.limit+1, 64))
	n := l.limit + 1
	after, hasAfter := l.after, l.hasAfter
	for len(items) <= l.limit {
		ids, err := candidates(ctx, c, l.keys, l.desc, after, hasAfter, n)
		if err != nil {
			return store.Page[T]{}, err
		}
		if len(ids) == 0 {
			break
		}
		loaded, err := l.load(ctx, ids)
		if err != nil {
			return store.Page[T]{}, err
		}
		for _, it := range loaded {
			if l.match(it) {
				items = append(items, it)
				if len(items) > l.limit {
					break
				}
			}
		}
		if len(ids) < n {
			break // every index is exhausted
		}
		after, hasAfter = ids[len(ids)-1], true
		// The filter is being checked on the hashes: read further ahead.
		n = min(n*2, store.MaxLimit)
	}
	p := store.Page[T]{Items: items}
	if len(items) > l.limit {
		p.Items = items[:l.limit]
		p.NextCursor = store.EncodeCursor(l.key(items[l.limit-1]))
	}
	return p, nil
}

// candidates returns up to n members of the union of the sorted sets keys,
// in score order (descending if desc), strictly after after. Members are
// integers scored by themselves. Fewer than n means every set is exhausted.
func candidates(ctx context.Context, c redis.UniversalClient, keys []string, desc bool, after int64, hasAfter bool, n int) ([]int64, error) {
	by := &redis.ZRangeBy{Min: "-inf", Max: "+inf", Count: int64(n)}
	if hasAfter {
		bound := "(" + strconv.FormatInt(after, 10)
		if desc {
			by.Max = bound
		} else {
			by.Min = bound
		}
	}
	cmds := make([]*redis.StringSliceCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			if desc {
				cmds[i] = p.ZRevRangeByScore(ctx, k, by)
			} else {
				cmds[i] = p.ZRangeByScore(ctx, k, by)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, cmd := range cmds {
		for _, m := range cmd.Val() {
			id, err := strconv.ParseInt(m, 10, 64)
			if err != nil {
				continue // not written by this store
			}
			ids = append(ids, id)
		}
	}
	if len(keys) > 1 {
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if desc {
			slices.Reverse(ids)
		}
		if len(ids) > n {
			ids = ids[:n]
		}
	}
	return ids, nil
}

// smallest returns the option whose sets hold the fewest members in total,
// and that total.
func smallest(ctx context.Context, c redis.UniversalClient, options [][]string) ([]string, int64, error) {
	if len(options) == 1 {
		return options[0], -1, nil
	}
	cmds := make([][]*redis.IntCmd, len(options))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, keys := range options {
			for _, k := range keys {
				cmds[i] = append(cmds[i], p.ZCard(ctx, k))
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	best, bestN := 0, int64(-1)
	for i := range options {
		var n int64
		for _, cmd := range cmds[i] {
			n += cmd.Val()
		}
		if bestN < 0 || n < bestN {
			best, bestN = i, n
		}
	}
	return options[best], bestN, nil
}

// hashes reads the hashes at keys in one round trip; a missing hash is nil.
func hashes(ctx context.Context, c redis.UniversalClient, keys []string) ([]map[string]string, error) {
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(keys))
	for i, cmd := range cmds {
		if h := cmd.Val(); len(h) > 0 {
			out[i] = h
		}
	}
	return out, nil
}
