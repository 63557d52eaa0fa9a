// Package redisurl reads DRIPFLOW_REDIS_URL (and a `redis` named connection)
// in its three forms — one Redis, a primary found through Sentinel, a Redis
// Cluster — and builds the go-redis client every part of a dripflow process
// shares: the queue, the scheduler's leader lease, events, worker presence and
// the Redis store. pkg/tasks turns the same Options into asynq's RedisConnOpt
// (for asynqmon), so there is one parser for every client.
//
// The forms:
//
//	redis://[[user]:password@]host[:6379][/db][?option=value…]
//	rediss://…                        the same over TLS
//	unix://[[user]:password@]/path/to/redis.sock[?db=N]
//	redis-sentinel://[[user]:password@]host1[:26379],host2[:26379],…/master[/db][?option=value…]
//	rediss-sentinel://…               the same over TLS (sentinels and Redis)
//	redis-cluster://[[user]:password@]host1[:6379],host2[:6379],…[?option=value…]
//	rediss-cluster://…                the same over TLS
//
// In the Sentinel form the user and password are those of the Redis primary
// and replicas; sentinel_username and sentinel_password (query options) are the
// sentinels' own, when they require one. The master's name may also be given
// as ?master=NAME (asynq's form) or ?master_name=NAME; the database as the
// path's second segment or ?db=N. A Cluster has database 0 only. Other query
// options are go-redis's (dial_timeout, read_timeout, pool_size, max_retries,
// …); an unknown one is an error.
package redisurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Kind is the shape of the Redis deployment a URL names.
type Kind int

// The kinds of Redis deployment.
const (
	// Standalone is one Redis server (redis://, rediss://, unix://).
	Standalone Kind = iota
	// Sentinel is a primary (with replicas) found through Redis Sentinel.
	Sentinel
	// Cluster is a Redis Cluster.
	Cluster
)

func (k Kind) String() string {
	switch k {
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	default:
		return "standalone"
	}
}

// Default ports when a host of a Sentinel or Cluster URL has none.
const (
	DefaultPort         = "6379"
	DefaultSentinelPort = "26379"
)

// Options is a parsed Redis URL. Exactly one of Single, Failover and
// ClusterOpts is set, as Kind says.
type Options struct {
	Kind        Kind
	Single      *redis.Options
	Failover    *redis.FailoverOptions
	ClusterOpts *redis.ClusterOptions

	redacted string
}

// Error is a URL refused by Parse. Its message never contains a password.
type Error struct {
	URL    string // the URL with its passwords replaced by "xxxxx"
	Reason string
}

func (e *Error) Error() string {
	if e.URL == "" {
		return "Redis URL: " + e.Reason
	}
	return fmt.Sprintf("Redis URL %s: %s", e.URL, e.Reason)
}

// Forms lists the accepted URL forms, for error messages and usage text.
const Forms = "redis://[user:password@]host:port[/db], rediss://…, unix:///path.sock, " +
	"redis-sentinel://[user:password@]host1:26379,host2:26379,…/master[/db][?sentinel_password=…] " +
	"or redis-cluster://[user:password@]host1:port,host2:port,…"

// Parse reads a Redis URL in any of the forms of the package documentation.
func Parse(raw string) (*Options, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, &Error{Reason: "empty; want " + Forms}
	}
	red := Redact(raw)
	fail := func(format string, args ...any) (*Options, error) {
		return nil, &Error{URL: red, Reason: fmt.Sprintf(format, args...)}
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return fail("no scheme; want %s", Forms)
	}
	switch scheme {
	case "redis", "rediss", "unix":
		if _, err := url.Parse(raw); err != nil {
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err // a *url.Error quotes the whole URL, password included
			}
			return fail("malformed URL: %v", err)
		}
		o, err := redis.ParseURL(raw)
		if err != nil {
			return fail("%s", scrub(err, raw))
		}
		return &Options{Kind: Standalone, Single: o, redacted: red}, nil
	case "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster":
	default:
		return fail("unknown scheme %q; want %s", scheme, Forms)
	}
	base, kindName, _ := strings.Cut(scheme, "-")
	kind := Sentinel
	defPort := DefaultSentinelPort
	if kindName == "cluster" {
		kind, defPort = Cluster, DefaultPort
	}

	// The authority holds several hosts, which net/url refuses: split it
	// off by hand and let net/url read the rest.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hostList := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostList = authority[:i], authority[i+1:]
	}
	var addrs []string
	for _, h := range strings.Split(hostList, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return fail("empty host in the host list (hosts are separated by commas)")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// No port: the default one.
			host, port = strings.Trim(h, "[]"), defPort
			if strings.ContainsAny(host, ":[]") && net.ParseIP(host) == nil {
				return fail("bad host %q", h)
			}
		}
		if host == "" {
			return fail("host %q has no name", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fail("host %q has a bad port", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	u, err := url.Parse("x://h" + tail)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fail("malformed: %v", err)
	}
	if u.Fragment != "" {
		return fail("a fragment (#…) is not allowed")
	}
	var user *url.Userinfo
	if userinfo != "" {
		pu, err := url.Parse("x://" + userinfo + "@h")
		if err != nil || pu.User == nil {
			return fail("malformed user or password (percent-encode special characters)")
		}
		user = pu.User
	}
	q := u.Query()
	for _, k := range []string{"addr", "password", "username", "master_name"} {
		if q.Has(k) && !(k == "master_name" && kind == Sentinel) {
			return fail("option %q is not allowed here (put hosts in the host list and the password before the @)", k)
		}
	}
	segs := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })

	// go-redis parses its own failover and cluster URLs, one host in the
	// authority and the others as addr=: translate to that form so every
	// go-redis option works.
	gq := url.Values{}
	for k, v := range q {
		gq[k] = v
	}
	gq.Del("sentinel_username")
	gq.Del("sentinel_password")
	gq.Del("master")
	gq.Del("master_name")
	for _, a := range addrs[1:] {
		gq.Add("addr", a)
	}
	g := &url.URL{Scheme: "redis", Host: addrs[0]}
	if base == "rediss" {
		g.Scheme = "rediss"
	}
	switch kind {
	case Sentinel:
		master := q.Get("master_name")
		if master == "" {
			master = q.Get("master")
		}
		db := ""
		switch len(segs) {
		case 0:
		case 1, 2:
			if master != "" && len(segs) == 1 {
				// ?master=NAME with /db as the path (asynq's form).
				db = segs[0]
				break
			}
			if master != "" && master != segs[0] {
				return fail("master name given twice (%q in the path, %q as an option)", segs[0], master)
			}
			master = segs[0]
			if len(segs) == 2 {
				db = segs[1]
			}
		default:
			return fail("path %q: want /master[/db]", u.Path)
		}
		if master == "" {
			return fail("no master name: want redis-sentinel://host1:26379,…/MASTER")
		}
		if db != "" {
			if q.Has("db") && q.Get("db") != db {
				return fail("database given twice (%q in the path, %q as an option)", db, q.Get("db"))
			}
			gq.Set("db", db)
		}
		if d := gq.Get("db"); d != "" {
			if n, err := strconv.Atoi(d); err != nil || n < 0 {
				return fail("database %q is not a number ≥ 0", d)
			}
		}
		gq.Set("master_name", master)
		if user != nil {
			gq.Set("username", user.Username())
			if p, ok := user.Password(); ok {
				gq.Set("password", p)
			}
		}
		su, sp := q.Get("sentinel_username"), q.Get("sentinel_password")
		switch {
		case su != "" && sp != "":
			g.User = url.UserPassword(su, sp)
		case sp != "":
			g.User = url.UserPassword("", sp)
		case su != "":
			g.User = url.User(su)
		}
		g.RawQuery = gq.Encode()
		fo, err := redis.ParseFailoverURL(g.String())
		if err != nil {
			return fail("%s", scrubAll(err, q, user))
		}
		return &Options{Kind: Sentinel, Failover: fo, redacted: red}, nil
	default:
		if len(segs) > 1 || (len(segs) == 1 && segs[0] != "0") || (q.Has("db") && q.Get("db") != "0") {
			return fail("a Redis Cluster has database 0 only")
		}
		gq.Del("db")
		for _, k := range []string{"sentinel_username", "sentinel_password", "master"} {
			if q.Has(k) {
				return fail("option %q is for redis-sentinel:// URLs", k)
			}
		}
		g.User = user
		g.RawQuery = gq.Encode()
		co, err := redis.ParseClusterURL(g.String())
		if err != nil {
			return fail("%s", scrubAll(err, q, user))
		}
		return &Options{Kind: Cluster, ClusterOpts: co, redacted: red}, nil
	}
}

// NewClient returns a new client for the URL: a *redis.Client for one
// server or a Sentinel-managed primary (it follows failovers), a
// *redis.ClusterClient for a Cluster. The caller closes it.
func (o *Options) NewClient() redis.UniversalClient {
	switch o.Kind {
	case Sentinel:
		fo := *o.Failover
		return redis.NewFailoverClient(&fo)
	case Cluster:
		co := *o.ClusterOpts
		return redis.NewClusterClient(&co)
	default:
		so := *o.Single
		return redis.NewClient(&so)
	}
}

// String is the URL with its passwords replaced by "xxxxx".
func (o *Options) String() string { return o.redacted }

// Where says what the client connects to, for error messages: an address,
// "primary NAME via sentinels A,B" or "cluster A,B".
func (o *Options) Where() string {
	switch o.Kind {
	case Sentinel:
		return fmt.Sprintf("primary %q via sentinels %s", o.Failover.MasterName, strings.Join(o.Failover.SentinelAddrs, ","))
	case Cluster:
		return "cluster " + strings.Join(o.ClusterOpts.Addrs, ",")
	default:
		return o.Single.Addr
	}
}

// DB is the database number the client uses (0 on a Cluster).
func (o *Options) DB() int {
	switch o.Kind {
	case Sentinel:
		return o.Failover.DB
	case Cluster:
		return 0
	default:
		return o.Single.DB
	}
}

// WithDB returns a copy that uses database db. A Cluster has database 0
// only: WithDB(n ≠ 0) on one returns an error.
func (o *Options) WithDB(db int) (*Options, error) {
	c := *o
	switch o.Kind {
	case Sentinel:
		fo := *o.Failover
		fo.DB = db
		c.Failover = &fo
	case Cluster:
		if db != 0 {
			return nil, &Error{URL: o.redacted, Reason: "a Redis Cluster has database 0 only"}
		}
	default:
		so := *o.Single
		so.DB = db
		c.Single = &so
	}
	return &c, nil
}

// Redact returns raw with the password of its user part and its
// sentinel_password option replaced by "xxxxx". A string that does not
// parse at all comes back as "<unparsable URL>".
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if strings.Contains(raw, "@") {
			return "<unparsable URL>"
		}
		return raw
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo := authority[:i]
		if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
			authority = user + ":xxxxx" + authority[i:]
		}
	}
	if qi := strings.Index(tail, "?"); qi >= 0 {
		path, query := tail[:qi], tail[qi+1:]
		frag := ""
		if fi := strings.Index(query, "#"); fi >= 0 {
			query, frag = query[:fi], query[fi:]
		}
		parts := strings.Split(query, "&")
		for i, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			if k == "sentinel_password" || k == "password" {
				parts[i] = k + "=xxxxx"
			}
		}
		tail = path + "?" + strings.Join(parts, "&") + frag
	}
	return scheme + "://" + authority + tail
}

// scrub removes raw (and so its password) from a go-redis error.
func scrub(err error, raw string) string {
	msg := err.Error()
	if raw != "" {
		msg = strings.ReplaceAll(msg, raw, "<url>")
	}
	return msg
}

// scrubAll removes the URL's passwords from a go-redis error about the
// translated URL.
func scrubAll(err error, q url.Values, user *url.Userinfo) string {
	msg := err.Error()
	secrets := []string{q.Get("sentinel_password")}
	if user != nil {
		p, _ := user.Password()
		secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
	}
	for _, v := range secrets {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "xxxxx")
		}
	}
	return msg
}
