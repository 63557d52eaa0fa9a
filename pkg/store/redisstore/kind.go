package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// kindKey is the index of the runs of one kind (backfill or flow).
func (s *Store) kindKey(kind string) string { return s.prefix + "runs:kind:" + kind }

// kindLayoutKey marks that the runs stored before runs:kind:{kind} existed
// have been indexed.
func (s *Store) kindLayoutKey() string { return s.prefix + "layout:runkind" }

// indexKinds makes runs:kind:{kind} hold every run, once per prefix: runs
// created since the index exists are added by create_run.lua, and older
// ones are added here, in steps of 1000 runs (adding a run twice changes
// nothing), before layout:runkind is set. A store written by an older
// dripflow thus needs no migration.
func (s *Store) indexKinds(ctx context.Context) error {
	if s.kindIndexed.Load() {
		return nil
	}
	n, err := s.client.Exists(ctx, s.kindLayoutKey()).Result()
	if err != nil {
		return fmt.Errorf("index runs by kind: %w", err)
	}
	if n == 0 {
		if err := s.indexKindsFrom(ctx); err != nil {
			return fmt.Errorf("index runs by kind: %w", err)
		}
		if err := s.client.Set(ctx, s.kindLayoutKey(), "1", 0).Err(); err != nil {
			return fmt.Errorf("index runs by kind: %w", err)
		}
	}
	s.kindIndexed.Store(true)
	return nil
}

func (s *Store) indexKindsFrom(ctx context.Context) error {
	const step = 1000
	from := "-inf"
	for {
		ids, err := s.client.ZRangeByScore(ctx, s.prefix+"runs", &redis.ZRangeBy{Min: from, Max: "+inf", Count: step}).Result()
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		kinds := make([]*redis.StringCmd, len(ids))
		if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				kinds[i] = p.HGet(ctx, s.prefix+"run:"+id, "kind")
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				if k := kinds[i].Val(); k != "" {
					score, _ := strconv.ParseFloat(id, 64)
					p.ZAdd(ctx, s.kindKey(k), redis.Z{Score: score, Member: id})
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if len(ids) < step {
			return nil
		}
		from = "(" + ids[len(ids)-1]
	}
}
