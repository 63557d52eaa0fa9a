package engine

import (
	"context"
	"errors"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/keyset"
)

// NextRange implements Pipeline.Next over a gorm query with keyset.Next.
func NextRange(ctx context.Context, q *gorm.DB, cols []keyset.Column, lo string, size int) (hi string, more, ok bool, err error) {
	loK, err := keyset.Decode(lo)
	if err != nil {
		return "", false, false, err
	}
	hiK, full, err := keyset.Next(ctx, q, cols, loK, size)
	if errors.Is(err, keyset.ErrNoRows) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, err
	}
	hi, err = keyset.Encode(hiK)
	if err != nil {
		return "", false, false, err
	}
	return hi, full, true, nil
}
