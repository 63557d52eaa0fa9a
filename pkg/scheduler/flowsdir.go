package scheduler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
)

// FlowsDirIdentity is the created_by of spec versions stored from
// Config.FlowsDir.
const FlowsDirIdentity = "flows-dir"

// flowsDir keeps the store's spec flows in step with a directory of spec
// files: at start and whenever a file's size or modification time changes,
// every file is read and applied (flows.Apply: created, a new version when
// it differs, nothing when equal). Applying is idempotent, so every
// scheduler may run one. A bad file is logged with its name and the
// field at fault and changes nothing; a removed file leaves its flow.
type flowsDir struct {
	dir      string
	interval time.Duration
	st       store.Store
	log      *zap.Logger

	seen  map[string]fileStamp // the files of the last scan that applied cleanly
	dirty bool                 // the last scan met a store error: scan again
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

func newFlowsDir(dir string, interval time.Duration, st store.Store, log *zap.Logger) *flowsDir {
	return &flowsDir{dir: dir, interval: interval, st: st, log: log.With(zap.String("flows_dir", dir))}
}

// run scans until ctx ends.
func (d *flowsDir) run(ctx context.Context) {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		d.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stamps lists the directory's spec files.
func (d *flowsDir) stamps() (map[string]fileStamp, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	out := map[string]fileStamp{}
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue // editors' swap and backup files
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		out[e.Name()] = fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	}
	return out, nil
}

// scan applies every file when any changed since the last scan.
func (d *flowsDir) scan(ctx context.Context) {
	now, err := d.stamps()
	if err != nil {
		if d.seen != nil || !d.dirty {
			d.log.Error("read flows directory", zap.Error(err))
		}
		d.seen, d.dirty = nil, true
		return
	}
	if !d.dirty && d.seen != nil && sameStamps(d.seen, now) {
		return
	}
	for name := range d.seen {
		if _, ok := now[name]; !ok {
			d.log.Info("flow spec file removed; its flow stays (delete it through the API or the CLI)", zap.String("file", name))
		}
	}
	names := make([]string, 0, len(now))
	for name := range now {
		names = append(names, name)
	}
	sort.Strings(names)
	d.dirty = false
	byFlow := map[string]string{}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		if !d.apply(ctx, name, byFlow) {
			d.dirty = true
		}
	}
	d.seen = now
}

// apply applies one file; false when the store failed (worth a retry), true
// otherwise, also for a bad file (it is logged until it changes).
func (d *flowsDir) apply(ctx context.Context, name string, byFlow map[string]string) bool {
	log := d.log.With(zap.String("file", name))
	data, err := os.ReadFile(filepath.Join(d.dir, name))
	if err != nil {
		log.Error("read flow spec file", zap.Error(err))
		return true
	}
	s, err := flows.ReadSpecFile(name, data)
	if err == nil {
		_, err = s.Compile()
	}
	if err != nil {
		log.Error("flow spec file is invalid; nothing changed", fieldOf(err), zap.Error(err))
		return true
	}
	log = log.With(zap.String("definition", s.Name))
	if other, dup := byFlow[s.Name]; dup {
		log.Error("flow spec file names a flow another file defines; ignored", zap.String("other_file", other))
		return true
	}
	byFlow[s.Name] = name
	fs, res, err := flows.Apply(ctx, d.st, s, FlowsDirIdentity)
	switch {
	case err == nil:
		if res != flows.Unchanged {
			log.Info("flow "+string(res)+" from its spec file", zap.Int64("version", fs.Version))
		}
		return true
	case errors.Is(err, flows.ErrDefinedInCode):
		log.Error("flow spec file names a flow defined in code; ignored", zap.Error(err))
		return true
	case errors.Is(err, store.ErrConflict):
		// Changed concurrently (another scheduler applied it first): the
		// next scan compares again.
		log.Info("flow changed while applying its spec file; trying again", zap.Error(err))
		return false
	}
	if ctx.Err() == nil {
		log.Warn("apply flow spec file", zap.Error(err))
	}
	return false
}

func fieldOf(err error) zap.Field {
	var fe *flows.FieldError
	if errors.As(err, &fe) && fe.Field != "" {
		return zap.String("field", fe.Field)
	}
	return zap.Skip()
}

func sameStamps(a, b map[string]fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.size != v.size || !w.mtime.Equal(v.mtime) {
			return false
		}
	}
	return true
}
