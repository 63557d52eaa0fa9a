package tasks_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/tasks"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	got := tasks.Config{}.WithDefaults()
	if got.Queue != tasks.QueueDefault || got.Retention != tasks.RetentionDefault {
		t.Errorf("Config{}.WithDefaults() = %+v, want every default set", got)
	}
	set := tasks.Config{Queue: "q", Retention: time.Minute}.WithDefaults()
	if set.Queue != "q" || set.Retention != time.Minute {
		t.Errorf("WithDefaults changed set fields: %+v", set)
	}
	if neg := (tasks.Config{Retention: -time.Second}).WithDefaults(); neg.Retention != -time.Second {
		t.Errorf("WithDefaults replaced a negative Retention (%v) rather than leave it to validation", neg.Retention)
	}

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	for _, tt := range []struct {
		name    string
		cfg     tasks.Config
		wantErr string
	}{
		{"defaults", tasks.Config{}, ""},
		{"set", tasks.Config{Queue: "q", Retention: time.Hour}, ""},
		{"negative retention", tasks.Config{Retention: -time.Second}, "Retention must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tasks.NewClient(rdb, tt.cfg)
			switch {
			case tt.wantErr == "" && (err != nil || c == nil):
				t.Fatalf("NewClient: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("NewClient error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
