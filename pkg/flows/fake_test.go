package flows

import (
	"context"

	"gorm.io/gorm"
)

// fakeSource and fakeSink only satisfy the interfaces for validation tests;
// connectors are tested against real databases in their own packages.
type fakeSource struct{}

func (fakeSource) Connector() string { return "fake" }
func (fakeSource) Incremental() bool { return false }
func (fakeSource) Next(context.Context, *gorm.DB, string, int) (string, bool, bool, error) {
	return "", false, false, nil
}
func (fakeSource) Count(context.Context, *gorm.DB) (int64, bool, error) { return 0, false, nil }
func (fakeSource) Read(context.Context, *gorm.DB, string, string) ([]Record, error) {
	return nil, nil
}

type fakeSink struct{}

func (fakeSink) Connector() string                                        { return "fake" }
func (fakeSink) Write(context.Context, *gorm.DB, []Record) (int64, error) { return 0, nil }
