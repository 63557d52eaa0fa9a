package backfills

import (
	"context"
	"fmt"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/keyset"
)

var (
	_ engine.DryRunChecker = (*pipeline[struct{}, struct{}])(nil)
	_ engine.Sampler       = (*pipeline[struct{}, struct{}])(nil)
)

// DryRunCheck allows a dry run: a backfill writes in the transaction it is
// given (Batch.DB, Element.DB, Range.DB). Code that writes elsewhere — a
// database handle of its own, an HTTP call — is the definition's
// responsibility; engine.DryRun detects the first on the rows it samples.
func (p *pipeline[M, P]) DryRunCheck() error { return nil }

// SampleKeys returns up to limit keys of the scope's records in (lo, hi].
func (p *pipeline[M, P]) SampleKeys(ctx context.Context, tx *gorm.DB, lo, hi string, limit int) ([]any, error) {
	loK, err := keyset.Decode(lo)
	if err != nil {
		return nil, err
	}
	hiK, err := keyset.Decode(hi)
	if err != nil {
		return nil, err
	}
	var records []M
	if err := keyset.Range(p.scoped(tx.WithContext(ctx)), p.cols, loK, hiK).Limit(limit).Find(&records).Error; err != nil {
		return nil, fmt.Errorf("load records: %w", err)
	}
	keys := make([]any, len(records))
	for i := range records {
		keys[i] = reflect.ValueOf(&records[i]).Elem().FieldByName(p.pk).Interface()
	}
	return keys, nil
}

// ReadRows reads the table's rows with the given keys, whatever the scope
// (a backfill often moves a row out of its scope) and soft deletion.
func (p *pipeline[M, P]) ReadRows(ctx context.Context, tx *gorm.DB, keys []any) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	if len(keys) == 0 {
		return out, nil
	}
	var rows []map[string]any
	q := tx.Session(&gorm.Session{NewDB: true}).WithContext(ctx).Table(p.table).
		Where(clause.IN{Column: clause.Column{Name: p.pkCol}, Values: keys})
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read rows of %s: %w", p.table, err)
	}
	for _, r := range rows {
		r = engine.NormalizeRow(r)
		out[fmt.Sprint(r[p.pkCol])] = r
	}
	return out, nil
}
