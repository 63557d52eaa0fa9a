package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"
	"gorm.io/gorm"
)

// DefaultConnection names the application database (DRIPFLOW_DATABASE_URL)
// among a process's SQL connections.
const DefaultConnection = "default"

// Resources are a process's shared handles for jobs and connectors: the
// application database, the URLs of its named connections
// (DRIPFLOW_CONNECTIONS), and the clients connectors opened from them. A
// connector asks for what it needs when it is built, once per process, and
// every flow that names the same connection shares one pool.
type Resources struct {
	db     *gorm.DB
	urls   map[string]string
	logger *zap.Logger

	mu      sync.Mutex
	shared  map[string]*sharedHandle
	onClose []func() error
	closed  bool
}

type sharedHandle struct {
	once  sync.Once
	v     any
	close func() error
	err   error
}

// NewResources returns the resources of a process whose application database
// is db (nil: none) and whose named connections are urls (name to URL).
func NewResources(db *gorm.DB, urls map[string]string, log *zap.Logger) *Resources {
	if log == nil {
		log = zap.NewNop()
	}
	u := make(map[string]string, len(urls))
	for k, v := range urls {
		u[k] = v
	}
	return &Resources{db: db, urls: u, logger: log, shared: map[string]*sharedHandle{}}
}

// DB returns the application database, or nil when the process has none.
func (r *Resources) DB() *gorm.DB {
	if r == nil {
		return nil
	}
	return r.db
}

// Logger returns the process's logger.
func (r *Resources) Logger() *zap.Logger {
	if r == nil {
		return zap.NewNop()
	}
	return r.logger
}

// ErrUnknownConnection is returned for a connection name the process was
// not given.
var ErrUnknownConnection = errors.New("unknown connection")

// URL returns the URL of the named connection.
func (r *Resources) URL(name string) (string, error) {
	if r != nil {
		if u, ok := r.urls[name]; ok {
			return u, nil
		}
	}
	return "", fmt.Errorf("%w %q (this process knows: %s; set DRIPFLOW_CONNECTIONS=%s=<url>)", ErrUnknownConnection, name, strings.Join(r.Names(), ", "), name)
}

// Names returns the names of the connections the process knows, sorted.
func (r *Resources) Names() []string {
	var out []string
	if r != nil {
		for k := range r.urls {
			out = append(out, k)
		}
		if r.db != nil {
			if _, ok := r.urls[DefaultConnection]; !ok {
				out = append(out, DefaultConnection)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Shared returns the handle stored under key, opening it with open the
// first time anyone asks. Handles live until Close, which calls each one's
// close function (nil: nothing to close). A failed open is not cached: the
// next call tries again.
func (r *Resources) Shared(key string, open func() (v any, close func() error, err error)) (any, error) {
	if r == nil {
		return nil, errors.New("no resources: the connector was built outside a dripflow process")
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("resources are closed")
	}
	h, ok := r.shared[key]
	if !ok {
		h = &sharedHandle{}
		r.shared[key] = h
	}
	r.mu.Unlock()
	h.once.Do(func() { h.v, h.close, h.err = open() })
	if h.err != nil {
		r.mu.Lock()
		if r.shared[key] == h {
			delete(r.shared, key)
		}
		r.mu.Unlock()
		return nil, h.err
	}
	return h.v, nil
}

// OnClose adds fn to what Close calls (before the shared handles close, so
// connectors built on them can still flush).
func (r *Resources) OnClose(fn func() error) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.onClose = append(r.onClose, fn)
	r.mu.Unlock()
}

// Close closes every shared handle. The application database is the
// caller's to close.
func (r *Resources) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	hs, fns := r.shared, r.onClose
	r.shared, r.onClose, r.closed = map[string]*sharedHandle{}, nil, true
	r.mu.Unlock()
	var errs []error
	for i := len(fns) - 1; i >= 0; i-- {
		errs = append(errs, fns[i]())
	}
	for key, h := range hs {
		if h.err == nil && h.close != nil {
			if err := h.close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", key, err))
			}
		}
	}
	return errors.Join(errs...)
}
