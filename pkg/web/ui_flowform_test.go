package web_test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/dripflow/dripflow/pkg/connectors/file" // the flow form's file sink
	"github.com/dripflow/dripflow/pkg/store"
)

// flowForm is a filled flow form: an sql source on ui_items, a select
// transform and a JSONL file sink into dir.
func flowForm(name, dir string) url.Values {
	return url.Values{
		"name": {name}, "description": {"Items to files."},
		"source.kind": {"sql"}, "source.sql.table": {"ui_items"}, "source.sql.columns": {"id, note, touched"},
		"transforms.0.type": {"select"}, "transforms.0.name": {""}, "transforms.0.settings": {`{"fields": ["id", "note"]}`},
		"sink.kind": {"file"}, "sink.file.dir": {dir}, "sink.file.format": {"jsonl"},
		"runtime.mode": {"every"}, "runtime.every": {"1h"},
		"options.batch_size": {"50"},
	}
}

// errorFor is the message the form shows next to field, "" if none.
func errorFor(body, field string) string {
	m := regexp.MustCompile(`data-error-for="` + regexp.QuoteMeta(field) + `">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func (e *uiEnv) noDefinition(name string) {
	e.t.Helper()
	if d, err := e.st.GetDefinition(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
		e.t.Fatalf("definition %s was stored (%+v, %v)", name, d, err)
	}
}

// TestFlowFormRejectsBadSpecs: every bad input re-renders the form with
// the message next to the failing field, keeps what was typed and stores
// nothing.
func TestFlowFormRejectsBadSpecs(t *testing.T) {
	e := newUIEnv(t, 20, nil)
	c := e.client()
	c.login(uiAliceToken)
	dir := filepath.Join(t.TempDir(), "out")

	r := c.get("/flows")
	if !strings.Contains(r.body, `id="new-flow"`) {
		t.Fatalf("the flows page offers no New flow to an admin:\n%s", r.body)
	}
	r = c.get("/flows/new")
	if r.code != http.StatusOK || !strings.Contains(r.body, `<option value="sql"`) || !strings.Contains(r.body, `name="sink.file.dir"`) {
		t.Fatalf("new flow form: %d\n%s", r.code, r.body)
	}
	if strings.Contains(r.body, "style=") || strings.Contains(r.body, "<script>") {
		t.Fatal("the flow form has inline styles or scripts, which the CSP refuses")
	}

	for _, tc := range []struct {
		name   string
		change func(url.Values)
		field  string
		want   string
	}{
		{"missing table", func(v url.Values) { v.Del("source.sql.table") }, "source.table", "is required (or model)"},
		{"bad batch size", func(v url.Values) { v.Set("options.batch_size", "many") }, "options.batch_size", "must be a whole number"},
		{"negative batch size", func(v url.Values) { v.Set("options.batch_size", "-5") }, "options.batch_size", "must not be negative"},
		{"transform settings not JSON", func(v url.Values) { v.Set("transforms.0.settings", "fields: id") }, "transforms[0]", "must be a JSON object"},
		{"transform setting unknown", func(v url.Values) { v.Set("transforms.0.settings", `{"columns": ["id"]}`) }, "transforms[0]", "columns: is not a setting"},
		{"unknown transform", func(v url.Values) { v.Set("transforms.0.type", "") }, "transforms[0]", "unknown transform"},
		{"missing sink dir", func(v url.Values) { v.Del("sink.file.dir") }, "sink.dir", "required"},
		{"bad runtime", func(v url.Values) { v.Set("runtime.every", "soon") }, "runtime", "heartbeat interval"},
		{"bad name", func(v url.Values) { v.Set("name", "Bad Name") }, "name", "lower-case letters"},
		{"reserved name", func(v url.Values) { v.Set("name", "new") }, "name", "taken by the page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := flowForm("items_to_files", dir)
			tc.change(form)
			form.Set("op", "save")
			r := c.post("/flows/new", "/flows/new", form)
			if r.code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422\n%s", r.code, r.body)
			}
			if got := errorFor(r.body, tc.field); !strings.Contains(got, tc.want) {
				t.Fatalf("message next to %s: %q, want %q\n%s", tc.field, got, tc.want, r.body)
			}
			if !strings.Contains(r.body, `id="form-problem"`) {
				t.Fatal("no summary of the problem on top")
			}
			// What was typed is still there.
			if !strings.Contains(r.body, `value="`+html.EscapeString(form.Get("sink.file.dir"))+`"`) || !strings.Contains(r.body, `Items to files.</textarea>`) {
				t.Fatalf("the form lost what was typed:\n%s", r.body)
			}
			e.noDefinition(form.Get("name"))
		})
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a rejected flow touched the sink's directory: %v", err)
	}
}

// TestFlowFormTransformsAndPaste: transforms are added, moved and removed
// by the form's buttons; a pasted YAML spec fills the form.
func TestFlowFormTransformsAndPaste(t *testing.T) {
	e := newUIEnv(t, 5, nil)
	c := e.client()
	c.login(uiAliceToken)
	form := flowForm("items_to_files", t.TempDir())
	form.Set("transforms.1.type", "drop")
	form.Set("transforms.1.name", "second")
	form.Set("transforms.1.settings", `{"fields": ["note"]}`)

	form.Set("op", "add-transform")
	r := c.post("/flows/new", "/flows/new", form)
	if r.code != http.StatusOK || !strings.Contains(r.body, `name="transforms.2.type"`) {
		t.Fatalf("add transform: %d\n%s", r.code, r.body)
	}
	form.Set("op", "up-transform-1")
	r = c.post("/flows/new", "/flows/new", form)
	if !regexp.MustCompile(`name="transforms.0.name" value="second"`).MatchString(r.body) {
		t.Fatalf("moving transform 1 up did not make it first:\n%s", r.body)
	}
	form.Set("op", "remove-transform-0")
	r = c.post("/flows/new", "/flows/new", form)
	if strings.Contains(r.body, `name="transforms.1.type"`) || !strings.Contains(r.body, `name="transforms.0.type"`) {
		t.Fatalf("removing a transform left the wrong rows:\n%s", r.body)
	}
	e.noDefinition("items_to_files")

	yaml := "name: pasted\nsource:\n  kind: sql\n  settings:\n    table: ui_items\nsink:\n  kind: file\n  settings:\n    dir: /tmp/x\n    format: csv\nruntime: cron @hourly\n"
	r = c.post("/flows/new", "/flows/new", url.Values{"spec_text": {yaml}, "op": {"load-spec"}})
	if r.code != http.StatusOK || !strings.Contains(r.body, `name="name" value="pasted"`) ||
		!strings.Contains(r.body, `name="sink.file.format" value="csv"`) || !strings.Contains(r.body, `id="runtime-cron" value="@hourly"`) {
		t.Fatalf("load a pasted spec: %d\n%s", r.code, r.body)
	}
	r = c.post("/flows/new", "/flows/new", url.Values{"spec_text": {"name: [unclosed"}, "op": {"load-spec"}})
	if r.code != http.StatusUnprocessableEntity || errorFor(r.body, "spec_text") == "" {
		t.Fatalf("a broken pasted spec: %d\n%s", r.code, r.body)
	}
	e.noDefinition("pasted")
}

// TestFlowFormPreview: a preview shows the first records the source reads
// and what the transforms make of them, and writes nothing.
func TestFlowFormPreview(t *testing.T) {
	e := newUIEnv(t, 30, nil)
	c := e.client()
	c.login(uiAliceToken)
	dir := filepath.Join(t.TempDir(), "out")
	form := flowForm("items_to_files", dir)
	form.Set("op", "preview")
	r := c.post("/flows/new", "/flows/new", form)
	if r.code != http.StatusOK {
		t.Fatalf("preview: %d\n%s", r.code, r.body)
	}
	before := tableText(t, r.body, "preview-before")
	after := tableText(t, r.body, "preview-after")
	if len(before) != 11 || strings.Join(before[0], ",") != "id,note,touched" || before[1][0] != "1" || before[10][0] != "10" {
		t.Fatalf("records read: %v", before)
	}
	if len(after) != 11 || strings.Join(after[0], ",") != "id,note" {
		t.Fatalf("records after the transforms: %v", after)
	}
	if !strings.Contains(r.body, "The first 10 records of the sql source") {
		t.Fatalf("no preview summary:\n%s", r.body)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the preview touched the sink's directory: %v", err)
	}
	e.noDefinition("items_to_files")

	// A source that fails says so in the preview.
	form.Set("source.sql.table", "no_such_table")
	r = c.post("/flows/new", "/flows/new", form)
	if r.code != http.StatusOK || !strings.Contains(r.body, `id="preview-error"`) || !strings.Contains(r.body, "no_such_table") {
		t.Fatalf("preview of a missing table: %d\n%s", r.code, r.body)
	}
}

var (
	rowRE  = regexp.MustCompile(`(?s)<tr>(.*?)</tr>`)
	cellRE = regexp.MustCompile(`(?s)<t[hd][^>]*>(.*?)</t[hd]>`)
)

// tableText is the text of table id's cells, header first.
func tableText(t *testing.T, body, id string) [][]string {
	t.Helper()
	i := strings.Index(body, `<table id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no table %s in:\n%s", id, body)
	}
	tbl := body[i : i+strings.Index(body[i:], "</table>")]
	var out [][]string
	for _, row := range rowRE.FindAllStringSubmatch(tbl, -1) {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(row[1], -1) {
			cells = append(cells, html.UnescapeString(c[1]))
		}
		out = append(out, cells)
	}
	return out
}

// TestFlowFormRolesAndCSRF: viewers and operators are offered nothing
// editable and are refused; a post without the form's token is refused;
// neither stores anything.
func TestFlowFormRolesAndCSRF(t *testing.T) {
	e := newUIEnv(t, 5, withRoles)
	dir := t.TempDir()
	for _, tok := range []string{veraToken, ottoToken} {
		c := e.client()
		c.login(tok)
		if r := c.get("/flows"); strings.Contains(r.body, "/flows/new") {
			t.Fatalf("the flows page offers New flow to a non-admin:\n%s", r.body)
		}
		if r := c.get("/flows/new"); r.code != http.StatusForbidden || !strings.Contains(r.body, "needs admin") {
			t.Fatalf("GET /flows/new as %s: %d\n%s", tok, r.code, r.body)
		}
		form := flowForm("items_to_files", dir)
		form.Set("op", "save")
		if r := c.post("/flows", "/flows/new", form); r.code != http.StatusForbidden {
			t.Fatalf("POST /flows/new: %d\n%s", r.code, r.body)
		}
		if r := c.get("/flows/ui_copy/edit"); r.code != http.StatusForbidden {
			t.Fatalf("GET edit: %d", r.code)
		}
	}
	c := e.client()
	c.login(adaToken)
	form := flowForm("items_to_files", dir)
	form.Set("op", "save")
	if r := c.post("", "/flows/new", form); r.code != http.StatusForbidden || !strings.Contains(r.body, "security token") {
		t.Fatalf("POST without the CSRF token: %d\n%s", r.code, r.body)
	}
	form.Set("csrf", "forged")
	if r := c.do("POST", "/flows/new", form); r.code != http.StatusForbidden {
		t.Fatalf("POST with a forged CSRF token: %d\n%s", r.code, r.body)
	}
	e.noDefinition("items_to_files")

	// A code flow is read-only.
	if r := c.get("/flows/ui_copy"); !strings.Contains(r.body, `id="code-flow"`) || strings.Contains(r.body, `id="edit-flow"`) {
		t.Fatalf("a code flow's page:\n%s", r.body)
	}
	if r := c.get("/flows/ui_copy/edit"); r.code != http.StatusConflict || !strings.Contains(r.body, "defined in code, read-only") {
		t.Fatalf("edit a code flow: %d\n%s", r.code, r.body)
	}
	form = flowForm("ui_copy", dir)
	form.Set("op", "save")
	if r := c.post("/flows", "/flows/ui_copy/edit", form); r.code != http.StatusConflict {
		t.Fatalf("save over a code flow: %d\n%s", r.code, r.body)
	}
}

// TestFlowFormSaveEditConflict: saving creates version 1 (inactive), the
// flow page shows it, editing saves version 2, and a save from a form
// opened at an older version is refused with the latest shown and nothing
// stored.
func TestFlowFormSaveEditConflict(t *testing.T) {
	e := newUIEnv(t, 5, nil)
	ctx := context.Background()
	c := e.client()
	c.login(uiAliceToken)
	dir := t.TempDir()

	form := flowForm("items_to_files", dir)
	form.Set("op", "save")
	r := c.post("/flows/new", "/flows/new", form)
	if r.code != http.StatusSeeOther || r.location() != "/flows/items_to_files" {
		t.Fatalf("save: %d to %q\n%s", r.code, r.location(), r.body)
	}
	fs, err := e.st.GetFlowSpec(ctx, "items_to_files", 0)
	if err != nil || fs.Version != 1 || fs.CreatedBy != "alice" {
		t.Fatalf("stored spec: %+v, %v", fs, err)
	}
	if !strings.Contains(string(fs.Spec), `"table":"ui_items"`) || !strings.Contains(string(fs.Spec), `"runtime":"every 1h"`) ||
		!strings.Contains(string(fs.Spec), `"columns":["id","note","touched"]`) {
		t.Fatalf("stored spec: %s", fs.Spec)
	}
	if st, err := e.st.GetFlow(ctx, "items_to_files"); err != nil || st.Active {
		t.Fatalf("a new flow's state: %+v, %v", st, err)
	}
	page := c.get("/flows/items_to_files")
	if !strings.Contains(page.body, "saved as version 1") || !strings.Contains(page.body, `id="spec-version">version 1<`) ||
		!strings.Contains(page.body, `id="edit-flow"`) || !strings.Contains(page.body, `<tr data-version="1">`) {
		t.Fatalf("flow page after saving:\n%s", page.body)
	}

	// Creating it again is refused.
	r = c.post("/flows/new", "/flows/new", form)
	if r.code != http.StatusConflict || !strings.Contains(r.body, "exists already") {
		t.Fatalf("create twice: %d\n%s", r.code, r.body)
	}

	// The edit form holds the stored spec.
	r = c.get("/flows/items_to_files/edit")
	if r.code != http.StatusOK || !strings.Contains(r.body, `value="ui_items"`) || !strings.Contains(r.body, `name="version" value="1"`) ||
		!strings.Contains(r.body, `value="50"`) || !strings.Contains(r.body, "Save as version 2") {
		t.Fatalf("edit form: %d\n%s", r.code, r.body)
	}
	edit := flowForm("ignored_name", dir)
	edit.Set("version", "1")
	edit.Set("description", "Second version.")
	edit.Set("op", "save")
	r = c.post("/flows/items_to_files/edit", "/flows/items_to_files/edit", edit)
	if r.code != http.StatusSeeOther || r.location() != "/flows/items_to_files" {
		t.Fatalf("save version 2: %d to %q\n%s", r.code, r.location(), r.body)
	}
	if fs, err := e.st.GetFlowSpec(ctx, "items_to_files", 0); err != nil || fs.Version != 2 || fs.Description != "Second version." {
		t.Fatalf("version 2: %+v, %v", fs, err)
	}
	if !strings.Contains(c.get("/flows/items_to_files").body, `<tr data-version="2">`) {
		t.Fatal("the history does not list version 2")
	}

	// Someone else saved version 2 while this form was at version 1.
	edit.Set("description", "Stale edit.")
	r = c.post("/flows/items_to_files/edit", "/flows/items_to_files/edit", edit)
	if r.code != http.StatusConflict || !strings.Contains(r.body, "now at version 2") || !strings.Contains(r.body, `id="current-spec"`) ||
		!strings.Contains(r.body, "Stale edit.</textarea>") {
		t.Fatalf("stale save: %d\n%s", r.code, r.body)
	}
	if fs, err := e.st.GetFlowSpec(ctx, "items_to_files", 0); err != nil || fs.Version != 2 || fs.Description != "Second version." {
		t.Fatalf("after a refused save: %+v, %v", fs, err)
	}
	e.noDefinition("ignored_name")
}
