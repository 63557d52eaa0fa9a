package store

import (
	"errors"
	"math"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, k := range []int64{0, 1, 42, 1 << 40, math.MaxInt64} {
		got, ok, err := DecodeCursor(EncodeCursor(k))
		if err != nil || !ok || got != k {
			t.Errorf("DecodeCursor(EncodeCursor(%d)) = %d, %v, %v", k, got, ok, err)
		}
	}
	if k, ok, err := DecodeCursor(""); k != 0 || ok || err != nil {
		t.Errorf(`DecodeCursor("") = %d, %v, %v; want the first page`, k, ok, err)
	}
}

func TestCursorRejectsGarbage(t *testing.T) {
	for _, c := range []string{"x", "====", "azE6", "azE6LTE", "azE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "Zm9vOjE", EncodeCursor(3) + "!"} {
		if _, _, err := DecodeCursor(c); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrInvalidArgument", c, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add("")
	f.Add(EncodeCursor(17))
	f.Add("azE6LTE")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, c string) {
		k, ok, err := DecodeCursor(c)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("DecodeCursor(%q) error %v does not match ErrInvalidArgument", c, err)
			}
			return
		}
		if !ok {
			if c != "" {
				t.Fatalf("DecodeCursor(%q) accepted a non-empty cursor as the first page", c)
			}
			return
		}
		if k < 0 {
			t.Fatalf("DecodeCursor(%q) = negative key %d", c, k)
		}
		if again, _, err := DecodeCursor(EncodeCursor(k)); err != nil || again != k {
			t.Fatalf("key %d does not round-trip", k)
		}
	})
}

func TestNormalizeLimit(t *testing.T) {
	for in, want := range map[int]int{0: DefaultLimit, 1: 1, MaxLimit: MaxLimit} {
		if got, err := NormalizeLimit(in); err != nil || got != want {
			t.Errorf("NormalizeLimit(%d) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []int{-1, MaxLimit + 1} {
		if _, err := NormalizeLimit(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("NormalizeLimit(%d) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
