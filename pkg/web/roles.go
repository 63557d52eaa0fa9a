package web

import (
	"fmt"
	"net/http"
	"strings"
)

// Role is what an identity may do: viewer reads, operator also starts and
// controls runs, admin also changes flows and acts in /monitoring.
type Role string

// The roles, from least to most allowed.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.rank() == 0 {
		return "", fmt.Errorf("unknown role %q: want viewer, operator or admin", s)
	}
	return r, nil
}

// Action is what a request does, as authorization sees it.
type Action string

// The actions and the least role each needs.
const (
	ActionRead       Action = "read"       // viewer
	ActionStart      Action = "start"      // operator: create a run
	ActionControl    Action = "control"    // operator: pause, resume, cancel, retry
	ActionFlows      Action = "flows"      // admin: create, change, delete, activate, deactivate, trigger flows
	ActionMonitoring Action = "monitoring" // admin: changes in /monitoring
)

func (a Action) needs() Role {
	switch a {
	case ActionRead:
		return RoleViewer
	case ActionStart, ActionControl:
		return RoleOperator
	}
	return RoleAdmin
}

var actionWords = map[Action]string{
	ActionRead: "read", ActionStart: "start runs", ActionControl: "pause, resume, cancel or retry runs",
	ActionFlows: "create, change, delete, activate, deactivate or trigger flows", ActionMonitoring: "change queues or tasks in /monitoring",
}

// forbiddenError is a request its identity's role does not allow.
type forbiddenError struct{ msg string }

func (e *forbiddenError) Error() string { return e.msg }

// role is the role of identity id, authenticated how: a token's own role,
// the proxy's role header, else Auth.DefaultRole.
func (a *authenticator) role(r *http.Request, id string, how via) Role {
	switch how {
	case viaToken, viaSession:
		if role, ok := a.cfg.Roles[id]; ok {
			return role
		}
	case viaProxy:
		if a.cfg.ProxyRoleHeader != "" {
			// Groups, comma-separated; the most allowed known one counts,
			// none known is the least role.
			best := Role("")
			for _, g := range strings.Split(r.Header.Get(a.cfg.ProxyRoleHeader), ",") {
				if role, err := ParseRole(g); err == nil && role.rank() > best.rank() {
					best = role
				}
			}
			if best == "" {
				return RoleViewer
			}
			return best
		}
	}
	return a.cfg.DefaultRole
}

// authorize says whether identity id may do action (on definition, when
// known): its role must allow it and the Authorize hook, if any, too.
func (a *authenticator) authorize(r *http.Request, id string, how via, action Action, definition string) error {
	role := a.role(r, id, how)
	if role.rank() < action.needs().rank() {
		return &forbiddenError{fmt.Sprintf("%s has the %s role, which may not %s: that needs %s", id, role, actionWords[action], action.needs())}
	}
	if a.cfg.Authorize != nil {
		if err := a.cfg.Authorize(id, action, definition); err != nil {
			return &forbiddenError{fmt.Sprintf("%s may not %s: %v", id, actionWords[action], err)}
		}
	}
	return nil
}

// can lists what a page may offer its viewer.
type can struct {
	Start, Control, Flows, Monitoring bool
}

func (a *authenticator) can(r *http.Request, id string, how via) can {
	ok := func(act Action) bool { return a.authorize(r, id, how, act, "") == nil }
	return can{Start: ok(ActionStart), Control: ok(ActionControl), Flows: ok(ActionFlows), Monitoring: ok(ActionMonitoring)}
}
