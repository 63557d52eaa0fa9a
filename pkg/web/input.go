package web

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/dripflow/dripflow/pkg/api"
)

// Query values and path parameters go to the store as filters and names:
// PostgreSQL refuses invalid UTF-8 and NUL with an error that would be a
// 500. They are refused up front as invalid input instead.

// checkText reports a value that is not valid UTF-8 or holds a NUL.
func checkText(field, v string) *api.ErrorDetail {
	switch {
	case !utf8.ValidString(v):
		d := errorf(codeInvalid, field, "%s is not valid UTF-8", field)
		return &d
	case strings.IndexByte(v, 0) >= 0:
		d := errorf(codeInvalid, field, "%s must not contain a NUL character", field)
		return &d
	}
	return nil
}

// checkQuery checks every key and value of a query (in key order, so the
// answer is stable).
func checkQuery(q url.Values) *api.ErrorDetail {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if d := checkText("query", k); d != nil {
			d.Message = "a query parameter name is not valid UTF-8 or holds a NUL character"
			return d
		}
		field := k
		if field == "" {
			field = "query"
		}
		for _, v := range q[k] {
			if d := checkText(field, v); d != nil {
				return d
			}
		}
	}
	return nil
}

var wildcardRE = regexp.MustCompile(`\{([^}.$]+)(?:\.\.\.)?\}`)

// checkRequestText checks r's query and the path parameters of the route
// it matched.
func checkRequestText(r *http.Request) *api.ErrorDetail {
	for _, m := range wildcardRE.FindAllStringSubmatch(r.Pattern, -1) {
		if d := checkText(m[1], r.PathValue(m[1])); d != nil {
			return d
		}
	}
	return checkQuery(r.URL.Query())
}
