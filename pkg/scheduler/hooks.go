package scheduler

// Notifications: the definition hooks (OnStart, OnComplete, OnError) and
// the webhooks of a run's events, sent by the leader.
//
// Each thing to do for an event of a run — call a hook, deliver to one
// webhook — has a key on the run's timeline ("hook:complete:<end>",
// "webhook:succeeded:<end>:<url id>", <end> being the run's FinishedAt in
// Unix microseconds, so a retried run that ends again is notified again).
// The key is appended once the thing is done (the hook returned, the
// webhook answered 2xx or ran out of attempts), and a thing whose key is
// on the timeline is never done again: a restarted or new leader reads the
// run's keys and does only what is missing. That is at-least-once: a
// leader that dies between doing a thing and recording it leaves it to
// the next, which does it again — a webhook's X-Dripflow-Delivery and a
// hook's RunInfo.Key are the same both times, for the receiver to drop the
// duplicate.

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/notify"
	"github.com/dripflow/dripflow/pkg/store"
)

const (
	// hookSweepInterval is how often the leader looks for ended runs
	// whose notifications are missing (a run cancelled while no scheduler
	// led, a leader that died while sending).
	hookSweepInterval = 15 * time.Second
	// hookCatchUp is how long after its end a run's missing notifications
	// are still sent; older ones are not, so turning webhooks on does not
	// replay history.
	hookCatchUp = 15 * time.Minute
	// hookSweepRuns is how many of the newest ended runs a sweep looks at.
	hookSweepRuns = 200
)

// notifierStore is what the notifier needs of the store.
type notifierStore interface {
	GetRun(ctx context.Context, id int64) (store.Run, error)
	ListRuns(ctx context.Context, f store.RunFilter) (store.Page[store.Run], error)
	ListBatches(ctx context.Context, runID int64, f store.BatchFilter) (store.Page[store.Batch], error)
	AppendRunEvent(ctx context.Context, e store.RunEvent) (store.RunEvent, bool, error)
	ListRunEvents(ctx context.Context, runID int64, f store.EventFilter) ([]store.RunEvent, error)
}

// notifier calls definitions' hooks and sends webhooks for the leader. Its
// methods do nothing on a nil notifier, or while not leading.
type notifier struct {
	store  notifierStore
	jobs   jobResolver
	sender *notify.Sender
	log    *zap.Logger
	mu     sync.Mutex
	term   *hookTerm // nil while not leading
}

// newNotifier returns the notifier of cfg (validated: cfg.Notify is good).
func newNotifier(cfg Config) *notifier {
	n := cfg.Notify
	n.Logger = cfg.Logger.Named("notify")
	sender, _ := notify.NewSender(n)
	return &notifier{store: cfg.Store, jobs: cfg.Registry, sender: sender, log: cfg.Logger}
}

// hookTerm is one leadership term's view: what it has done or knows is
// done, and the deliveries it runs. A new term starts from the store, since
// another leader may have sent things meanwhile.
type hookTerm struct {
	ctx  context.Context
	wg   sync.WaitGroup
	mu   sync.Mutex
	keys map[int64]map[string]bool // run → keys on its timeline (loaded once)
	busy map[string]bool           // "<run>/<key>" being done now
	done map[string]bool           // "<run>/<event key>": nothing left to do
	last map[int64]chan struct{}   // run → its latest job's end, so events go in order
}

// hookAction is one thing to do for an event: a hook or a webhook.
type hookAction struct {
	key     string
	hook    notify.HookFunc
	name    string // OnStart, OnComplete, OnError
	webhook notify.Webhook
}

// startHooks begins a leadership term's notifications: a sweep for ended
// runs whose notifications are missing, now and every hookSweepInterval.
// The function it returns ends the term and waits for its deliveries
// (which stop at once when ctx ends).
func (s *notifier) lead(ctx context.Context) func() {
	if s == nil {
		return func() {}
	}
	t := &hookTerm{ctx: ctx, keys: map[int64]map[string]bool{}, busy: map[string]bool{}, done: map[string]bool{}, last: map[int64]chan struct{}{}}
	s.mu.Lock()
	s.term = t
	s.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(hookSweepInterval)
		defer tick.Stop()
		for {
			s.sweepHooks(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		s.mu.Lock()
		if s.term == t {
			s.term = nil
		}
		s.mu.Unlock()
		t.wg.Wait()
	}
}

func (s *notifier) hookTerm() *hookTerm {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term
}

// started notifies that run r (running) started, once.
func (s *notifier) started(ctx context.Context, r store.Run) {
	s.notifyEvent(ctx, r, notify.Started)
}

// ended notifies that run r ended, once per end. r may be the run as it
// was before it ended: then it is read again.
func (s *notifier) ended(ctx context.Context, r store.Run) {
	if s.hookTerm() == nil {
		return
	}
	if !r.State.Terminal() || r.FinishedAt == nil {
		var err error
		if r, err = s.store.GetRun(ctx, r.ID); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("read ended run for its notifications", zap.Int64("run", r.ID), zap.Error(err))
			}
			return
		}
	}
	e, ok := notify.EventOf(r.State)
	if !ok {
		return
	}
	// A run that ended before its start was notified (nothing to plan)
	// is notified of both, in order; one cancelled before it started, of
	// its end only.
	if r.StartedAt != nil {
		s.notifyEvent(ctx, r, notify.Started)
	}
	s.notifyEvent(ctx, r, e)
}

// sweepHooks notifies the ends of runs that ended within hookCatchUp and
// whose notifications this term has not seen done.
func (s *notifier) sweepHooks(ctx context.Context) {
	page, err := s.store.ListRuns(ctx, store.RunFilter{States: []store.RunState{store.RunSucceeded, store.RunFailed, store.RunCancelled}, Limit: hookSweepRuns})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list ended runs for their notifications", zap.Error(err))
		}
		return
	}
	for _, r := range page.Items {
		if r.FinishedAt != nil && time.Since(*r.FinishedAt) < hookCatchUp {
			s.ended(ctx, r)
		}
	}
}

// notifyEvent starts, in the background, whatever event e of run r still
// needs; it returns at once when this term knows nothing is left.
func (s *notifier) notifyEvent(ctx context.Context, r store.Run, e notify.Event) {
	t := s.hookTerm()
	if t == nil {
		return
	}
	eventKey := strconv.FormatInt(r.ID, 10) + "/" + notify.Key(r, e)
	t.mu.Lock()
	done := t.done[eventKey]
	t.mu.Unlock()
	if done {
		return
	}
	log := s.log.With(zap.Int64("run", r.ID), zap.String("definition", r.Definition), zap.String("event", string(e)))
	actions := s.hookActions(ctx, r, e, log)
	if len(actions) == 0 {
		t.markDone(eventKey)
		return
	}
	keys, err := s.runHookKeys(ctx, t, r.ID)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("read the run's timeline for its notifications", zap.Error(err))
		}
		return
	}
	var todo []hookAction
	t.mu.Lock()
	for _, a := range actions {
		busy := strconv.FormatInt(r.ID, 10) + "/" + a.key
		if keys[a.key] || t.busy[busy] {
			continue
		}
		t.busy[busy] = true
		todo = append(todo, a)
	}
	if len(todo) == 0 {
		all := allRecorded(keys, actions)
		t.mu.Unlock()
		if all {
			t.markDone(eventKey)
		}
		return
	}
	prev := t.last[r.ID]
	mine := make(chan struct{})
	t.last[r.ID] = mine
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		defer close(mine)
		if prev != nil {
			select {
			case <-prev:
			case <-t.ctx.Done():
			}
		}
		s.runHookActions(t, r, e, todo, log)
		t.mu.Lock()
		for _, a := range todo {
			delete(t.busy, strconv.FormatInt(r.ID, 10)+"/"+a.key)
		}
		all := allRecorded(t.keys[r.ID], actions)
		if t.last[r.ID] == mine {
			delete(t.last, r.ID)
		}
		t.mu.Unlock()
		if all {
			t.markDone(eventKey)
		}
	}()
}

func allRecorded(keys map[string]bool, actions []hookAction) bool {
	for _, a := range actions {
		if !keys[a.key] {
			return false
		}
	}
	return true
}

func (t *hookTerm) markDone(eventKey string) {
	t.mu.Lock()
	t.done[eventKey] = true
	t.mu.Unlock()
}

// hookActions lists what event e of run r asks for: the definition's hook
// for e, its webhooks and the global ones that want e (for a flow's run, the
// global webhooks hear only of failures).
func (s *notifier) hookActions(ctx context.Context, r store.Run, e notify.Event, log *zap.Logger) []hookAction {
	end := ""
	if e != notify.Started && r.FinishedAt != nil {
		end = ":" + strconv.FormatInt(r.FinishedAt.UnixMicro(), 10)
	}
	var out []hookAction
	var declared notify.Hooks
	if job, err := s.jobs.Resolve(ctx, r.Definition, r.SpecVersion); err == nil {
		if d, ok := job.(notify.Declarer); ok {
			declared = d.Hooks()
		}
	} else if ctx.Err() == nil {
		log.Debug("definition not available for its hooks", zap.Error(err))
	}
	if fn := declared.Func(e); fn != nil {
		name := map[notify.Event]string{notify.Started: "OnStart", notify.Succeeded: "OnComplete", notify.Failed: "OnError"}[e]
		key := map[notify.Event]string{notify.Started: "hook:start", notify.Succeeded: "hook:complete", notify.Failed: "hook:error"}[e]
		out = append(out, hookAction{key: key + end, hook: fn, name: name})
	}
	seen := map[string]bool{}
	add := func(w notify.Webhook) {
		if !w.Wants(e) || seen[w.ID()] {
			return
		}
		seen[w.ID()] = true
		out = append(out, hookAction{key: "webhook:" + string(e) + end + ":" + w.ID(), webhook: w})
	}
	for _, w := range declared.Webhooks {
		add(w)
	}
	if r.Kind != store.KindFlow || e == notify.Failed {
		for _, w := range s.sender.Config().Webhooks {
			add(w)
		}
	}
	return out
}

// runHookKeys returns the hook and webhook keys on run id's timeline,
// read from the store once per term and kept up to date by this term.
func (s *notifier) runHookKeys(ctx context.Context, t *hookTerm, id int64) (map[string]bool, error) {
	t.mu.Lock()
	keys, ok := t.keys[id]
	t.mu.Unlock()
	if ok {
		return keys, nil
	}
	keys = map[string]bool{}
	f := store.EventFilter{Limit: store.MaxEventLimit}
	for {
		evs, err := s.store.ListRunEvents(ctx, id, f)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.Kind == store.EventHook && ev.Key != "" {
				keys[ev.Key] = true
			}
			f.AfterID = ev.ID
		}
		if len(evs) < f.Limit {
			break
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if have, ok := t.keys[id]; ok {
		return have, nil
	}
	t.keys[id] = keys
	return keys, nil
}

// runHookActions does the actions of one event: the hook first, then the
// webhooks side by side. Each is recorded on the timeline when done.
func (s *notifier) runHookActions(t *hookTerm, r store.Run, e notify.Event, todo []hookAction, log *zap.Logger) {
	ctx := t.ctx
	info := notify.NewRunInfo(r, e, s.firstBatchError(ctx, r, e))
	var webhooks []hookAction
	for _, a := range todo {
		if a.hook == nil {
			webhooks = append(webhooks, a)
			continue
		}
		msg, err := s.callHook(ctx, a, info)
		if ctx.Err() != nil {
			return // leadership ended: the next leader calls it again
		}
		if err != nil {
			log.Warn("definition hook failed", zap.String("hook", a.name), zap.Error(err))
		}
		s.recordHook(t, r.ID, a.key, msg, log)
	}
	if len(webhooks) == 0 {
		return
	}
	payload := notify.NewPayload(info, s.sender.Config().PublicURL)
	var wg sync.WaitGroup
	for _, a := range webhooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			where := notify.Redact(a.webhook.URL)
			d, err := s.sender.Deliver(ctx, a.webhook, payload)
			if ctx.Err() != nil {
				return // the next leader sends it
			}
			var msg string
			if err != nil {
				msg = fmt.Sprintf("webhook %s (%s) failed after %d attempts: %v", where, e, d.Attempts, err)
				log.Warn("webhook failed", zap.String("webhook", where), zap.Int("attempts", d.Attempts), zap.Error(err))
			} else {
				msg = fmt.Sprintf("webhook %s (%s) delivered, HTTP %d after %d attempt(s), delivery %s", where, e, d.Status, d.Attempts, payload.DeliveryID)
				log.Info("webhook delivered", zap.String("webhook", where), zap.Int("attempts", d.Attempts))
			}
			s.recordHook(t, r.ID, a.key, msg, log)
		}()
	}
	wg.Wait()
}

// callHook calls a definition hook with the configured timeout; a panic is
// an error. It returns the timeline's message.
func (s *notifier) callHook(ctx context.Context, a hookAction, info notify.RunInfo) (msg string, err error) {
	hctx, cancel := context.WithTimeout(ctx, s.sender.Config().HookTimeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		done <- a.hook(hctx, info)
	}()
	// A hook that ignores its context is left behind after the timeout,
	// so it cannot hold the scheduler.
	select {
	case err = <-done:
	case <-hctx.Done():
		err = fmt.Errorf("did not return within %s: %w", s.sender.Config().HookTimeout, hctx.Err())
	}
	if err == nil {
		return fmt.Sprintf("%s ran in %s", a.name, time.Since(start).Round(time.Millisecond)), nil
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Sprintf("%s timed out: %v", a.name, err), err
	}
	return fmt.Sprintf("%s failed: %v", a.name, err), err
}

// recordHook appends key to the run's timeline.
func (s *notifier) recordHook(t *hookTerm, runID int64, key, msg string, log *zap.Logger) {
	_, _, err := s.store.AppendRunEvent(t.ctx, store.RunEvent{RunID: runID, Kind: store.EventHook, Actor: "scheduler", Key: key, Message: msg})
	if err != nil {
		if t.ctx.Err() == nil {
			log.Warn("record notification on the timeline", zap.String("key", key), zap.Error(err))
		}
		return
	}
	t.mu.Lock()
	if t.keys[runID] == nil {
		t.keys[runID] = map[string]bool{}
	}
	t.keys[runID][key] = true
	t.mu.Unlock()
}

// firstBatchError returns the error of the run's first failed batch for an
// end event ("" when none failed).
func (s *notifier) firstBatchError(ctx context.Context, r store.Run, e notify.Event) string {
	if e == notify.Started || r.BatchesFailed == 0 {
		return ""
	}
	page, err := s.store.ListBatches(ctx, r.ID, store.BatchFilter{States: []store.BatchState{store.BatchFailed}, Limit: 1})
	if err != nil || len(page.Items) == 0 {
		return ""
	}
	return page.Items[0].Error
}
