package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/web"
)

const (
	veraToken = "vera-viewer-token-0123456789"
	ottoToken = "otto-operator-token-0123456789"
	adaToken  = "ada-admin-token-0123456789"
)

func withRoles(o *web.Options) {
	for tok, name := range map[string]string{veraToken: "vera", ottoToken: "otto", adaToken: "ada"} {
		o.Auth.Tokens[tok] = name
	}
	o.Auth.Roles = map[string]web.Role{"vera": web.RoleViewer, "otto": web.RoleOperator, "ada": web.RoleAdmin}
}

func TestRolesAPI(t *testing.T) {
	e := newAPIEnv(t, func(o *web.Options) {
		withRoles(o)
		o.Auth.ProxyHeader = "X-Forwarded-Email"
		o.Auth.ProxyRoleHeader = "X-Forwarded-Groups"
		o.Auth.Authorize = func(id string, a web.Action, def string) error {
			if id == "ada" && def == "fix_user_emails" && a == web.ActionStart {
				return errors.New("fix_user_emails is frozen this week")
			}
			return nil
		}
	})
	running := e.runInState(store.RunRunning)
	create := `{"definition":"add_default_role_to_users"}`
	for _, tc := range []struct {
		who, token, method, path, body string
		want                           int
	}{
		{"viewer", veraToken, "GET", "/api/v1/runs", "", 200},
		{"viewer", veraToken, "GET", "/api/v1/runs/" + running.ID, "", 200},
		{"viewer", veraToken, "POST", "/api/v1/runs", create, 403},
		{"viewer", veraToken, "POST", "/api/v1/runs/" + running.ID + "/pause", "", 403},
		{"viewer", veraToken, "POST", "/api/v1/runs/" + running.ID + "/retry", "", 403},
		{"viewer", veraToken, "POST", "/api/v1/flows/user_sync/activate", "", 403},
		{"operator", ottoToken, "POST", "/api/v1/runs", create, 201},
		{"operator", ottoToken, "POST", "/api/v1/runs/" + running.ID + "/pause", "", 200},
		{"operator", ottoToken, "POST", "/api/v1/runs/" + running.ID + "/resume", "", 200},
		{"operator", ottoToken, "POST", "/api/v1/flows/user_sync/activate", "", 403},
		{"operator", ottoToken, "POST", "/api/v1/flows/user_sync/trigger", "", 403},
		{"admin", adaToken, "POST", "/api/v1/flows/user_sync/activate", "", 200},
		{"admin", adaToken, "POST", "/api/v1/flows/user_sync/deactivate", "", 200},
		{"admin", adaToken, "POST", "/api/v1/runs", create, 201},
		{"admin, refused by the hook", adaToken, "POST", "/api/v1/runs", `{"definition":"fix_user_emails"}`, 403},
		{"token without a role (admin)", aliceToken, "POST", "/api/v1/flows/user_sync/activate", "", 200},
	} {
		code, ed, _ := e.raw(tc.method, tc.path, tc.token, tc.body)
		if code != tc.want {
			t.Errorf("%s: %s %s: %d %+v, want %d", tc.who, tc.method, tc.path, code, ed, tc.want)
		}
		if code == 403 && (ed.Code != "forbidden" || ed.Message == "") {
			t.Errorf("%s: %s %s: 403 without a clear error: %+v", tc.who, tc.method, tc.path, ed)
		}
	}
	code, ed, _ := e.raw("POST", "/api/v1/runs", veraToken, create)
	if code != 403 || !strings.Contains(ed.Message, "vera has the viewer role") || !strings.Contains(ed.Message, "operator") {
		t.Errorf("viewer's message: %+v", ed)
	}
	if code, ed, _ := e.raw("POST", "/api/v1/runs", adaToken, `{"definition":"fix_user_emails"}`); code != 403 || !strings.Contains(ed.Message, "frozen") {
		t.Errorf("hook's message: %d %+v", code, ed)
	}

	// The proxy's groups header gives its identities their roles.
	proxied := func(groups, method, path, body string) int {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("X-Forwarded-Email", "pat@example.com")
		req.Header.Set("Content-Type", "application/json")
		if groups != "" {
			req.Header.Set("X-Forwarded-Groups", groups)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		groups, method, path, body string
		want                       int
	}{
		{"", "GET", "/api/v1/runs", "", 200},
		{"", "POST", "/api/v1/runs", create, 403},
		{"staff, operator", "POST", "/api/v1/runs", create, 201},
		{"staff, operator", "POST", "/api/v1/flows/user_sync/activate", "", 403},
		{"operator,admin", "POST", "/api/v1/flows/user_sync/activate", "", 200},
	} {
		if got := proxied(tc.groups, tc.method, tc.path, tc.body); got != tc.want {
			t.Errorf("proxy groups %q: %s %s: %d, want %d", tc.groups, tc.method, tc.path, got, tc.want)
		}
	}
}

func TestRolesUI(t *testing.T) {
	e := newUIEnv(t, 30, withRoles)
	run := e.createRun("alice", `{"note":"x"}`, nil)
	if _, err := e.st.TransitionRun(context.Background(), run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	runPath := fmt.Sprintf("/runs/%d", run.ID)
	queue := e.opts.Queue
	e.rdb.SAdd(context.Background(), "asynq:queues", queue)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	type want struct {
		control, start, flows, monitoring bool
	}
	for _, tc := range []struct {
		name, token string
		want        want
	}{
		{"viewer", veraToken, want{}},
		{"operator", ottoToken, want{control: true, start: true}},
		{"admin", adaToken, want{true, true, true, true}},
	} {
		c := e.client()
		c.login(tc.token)
		runPage := c.get(runPath)
		if got := strings.Contains(runPage.body, runPath+"/pause"); got != tc.want.control {
			t.Errorf("%s: pause button shown: %v", tc.name, got)
		}
		if got := strings.Contains(c.get("/definitions/ui_touch").body, ">Start run</button>"); got != tc.want.start {
			t.Errorf("%s: start button shown: %v", tc.name, got)
		}
		if got := strings.Contains(c.get("/flows").body, "/flows/ui_copy/activate"); got != tc.want.flows {
			t.Errorf("%s: activate button shown: %v", tc.name, got)
		}
		// The forms themselves are refused, whatever the page showed.
		csrf := csrfOf(t, runPage.body)
		status := func(ok bool, code int) bool {
			return (ok && code == http.StatusSeeOther) || (!ok && code == http.StatusForbidden)
		}
		if r := c.do("POST", "/flows/ui_copy/activate", url.Values{"csrf": {csrf}}); !status(tc.want.flows, r.code) {
			t.Errorf("%s: activate a flow: %d", tc.name, r.code)
		}
		if r := c.do("POST", runPath+"/pause", url.Values{"csrf": {csrf}}); !status(tc.want.control, r.code) {
			t.Errorf("%s: pause: %d", tc.name, r.code)
		} else if r.code == http.StatusSeeOther {
			c.do("POST", runPath+"/resume", url.Values{"csrf": {csrf}})
		}
		if r := c.do("POST", "/definitions/ui_touch/runs", url.Values{"csrf": {csrf}, "p.note": {"y"}}); !status(tc.want.start, r.code) {
			t.Errorf("%s: start a run: %d\n%s", tc.name, r.code, r.body)
		}
		// /monitoring: anyone reads, only admins act.
		if r := c.get("/monitoring/api/queues"); r.code != 200 {
			t.Errorf("%s: GET /monitoring/api/queues: %d", tc.name, r.code)
		}
		c.header.Set("Origin", "http://"+host)
		code := c.do("POST", "/monitoring/api/queues/"+queue+":pause", url.Values{}).code
		if (tc.want.monitoring && code != http.StatusNoContent) || (!tc.want.monitoring && code != http.StatusForbidden) {
			t.Errorf("%s: pause the queue in /monitoring: %d", tc.name, code)
		}
		if code == http.StatusNoContent {
			c.do("POST", "/monitoring/api/queues/"+queue+":resume", url.Values{})
		}
	}
}

func TestParseTokenRoles(t *testing.T) {
	tokens, roles, err := web.ParseTokenRoles("alice:" + aliceToken + ", vera:" + veraToken + ":viewer,otto:" + ottoToken + ":operator ,ada:" + adaToken + ":admin")
	if err != nil {
		t.Fatal(err)
	}
	if tokens[aliceToken] != "alice" || tokens[veraToken] != "vera" || tokens[ottoToken] != "otto" || tokens[adaToken] != "ada" || len(tokens) != 4 {
		t.Errorf("tokens %v", tokens)
	}
	if _, ok := roles["alice"]; ok || roles["vera"] != web.RoleViewer || roles["otto"] != web.RoleOperator || roles["ada"] != web.RoleAdmin {
		t.Errorf("roles %v", roles)
	}
	// A token with a colon but no role keeps its colon.
	if tokens, _, err := web.ParseTokenRoles("x:abc:defghijklmnopqrstuv"); err != nil || tokens["abc:defghijklmnopqrstuv"] != "x" {
		t.Errorf("token with a colon: %v %v", tokens, err)
	}
	for _, bad := range []string{"v:" + veraToken + ":viewer,v:" + ottoToken + ":admin", "v:short:viewer", "v::admin"} {
		if _, _, err := web.ParseTokenRoles(bad); err == nil {
			t.Errorf("ParseTokenRoles(%q) accepted", bad)
		} else if strings.Contains(err.Error(), veraToken) || strings.Contains(err.Error(), ottoToken) {
			t.Errorf("error reveals a token: %v", err)
		}
	}
}

func TestMetricsNeedAuthentication(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("dripflow_up 1\n")) })
	e := newAPIEnv(t, func(o *web.Options) { withRoles(o); o.Metrics = metrics })
	if code, _, _ := e.raw("GET", "/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d", code)
	}
	if code, _, _ := e.raw("GET", "/metrics", veraToken, ""); code != http.StatusOK {
		t.Errorf("/metrics with a viewer token: %d", code)
	}
	p := newAPIEnv(t, func(o *web.Options) { o.Metrics = metrics; o.PublicMetrics = true })
	if code, _, _ := p.raw("GET", "/metrics", "", ""); code != http.StatusOK {
		t.Errorf("public /metrics: %d", code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _, _ := e.raw("GET", path, "", ""); code != http.StatusOK {
			t.Errorf("%s without a token: %d", path, code)
		}
	}
}
