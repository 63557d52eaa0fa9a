package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/web"
)

// TestAPICSVParam: a run of import_user_emails is created with its CSV as
// a JSON string, and both stores keep the text as sent; a bad CSV is a
// 422 naming params.emails and its reason, a CSV over the limit a 422
// saying the limit, a body over the run limit a 413 — none creates a run.
func TestAPICSVParam(t *testing.T) {
	for _, sql := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "sql"}[sql], func(t *testing.T) {
			e := newAPIEnvOn(t, sql, nil)
			ctx := context.Background()
			text := "id,email\n1,<new&one>@example.org\n2,\"two,too@example.org\"\n"
			r, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "import_user_emails", Params: mustJSON(t, map[string]string{"emails": text})})
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.alice.Run(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			var p struct{ Emails string }
			if err := json.Unmarshal(got.Params, &p); err != nil || p.Emails != text {
				t.Fatalf("params as stored: %s (%v)", got.Params, err)
			}
			pv, err := e.alice.Preview(ctx, "import_user_emails", mustJSON(t, map[string]string{"emails": text}), 1)
			if err != nil || pv.Records != 2 || pv.Batches != 2 {
				t.Errorf("preview: %+v, %v; want 2 records in 2 batches", pv, err)
			}

			runs := func() int {
				pg, err := e.st.ListRuns(ctx, store.RunFilter{})
				if err != nil {
					t.Fatal(err)
				}
				return len(pg.Items)
			}
			before := runs()
			bad := []struct{ name, csv, want string }{
				{"ragged", "id,email\n1,a@b.c\n2\n", "line 3 has 1 fields, the header has 2"},
				{"missing header", "id,mail\n1,a@b.c\n", "header lacks the column(s) email"},
				{"empty", "", "is empty"},
				{"header only", "id,email\n", "has a header but no rows"},
				{"over the limit", "id,email\n" + strings.Repeat("1,a@b.c\n", params.MaxCSVBytes/8+1), "a CSV holds at most 5242880 bytes"},
			}
			for _, b := range bad {
				body, _ := json.Marshal(map[string]any{"definition": "import_user_emails", "params": map[string]string{"emails": b.csv}})
				code, detail, _ := e.raw("POST", "/api/v1/runs", aliceToken, string(body))
				if code != http.StatusUnprocessableEntity || detail.Field != "params.emails" || !strings.Contains(detail.Message, b.want) {
					t.Errorf("%s: %d %+v, want 422 on params.emails saying %q", b.name, code, detail, b.want)
				}
			}
			// Not UTF-8: the JSON decoder leaves U+FFFD where the bytes were.
			code, detail, _ := e.raw("POST", "/api/v1/runs", aliceToken, "{\"definition\":\"import_user_emails\",\"params\":{\"emails\":\"id,email\\n1,caf\xe9@b.c\\n\"}}")
			if code != http.StatusUnprocessableEntity && code != http.StatusBadRequest || !strings.Contains(detail.Message, "UTF-8") {
				t.Errorf("not UTF-8: %d %+v", code, detail)
			}
			huge := `{"definition":"import_user_emails","params":{"emails":"` + strings.Repeat("x", 2*params.MaxCSVBytes+(2<<20)) + `"}}`
			if code, detail, _ := e.raw("POST", "/api/v1/runs", aliceToken, huge); code != http.StatusRequestEntityTooLarge {
				t.Errorf("a 12 MiB body: %d %+v, want 413", code, detail)
			}
			// Other requests keep the usual 1 MiB.
			if code, _, _ := e.raw("POST", "/api/v1/flows/validate", aliceToken, `{"name":"`+strings.Repeat("x", 2<<20)+`"}`); code != http.StatusRequestEntityTooLarge {
				t.Errorf("a 2 MiB flow body: %d, want 413", code)
			}
			if n := runs(); n != before {
				t.Errorf("refused CSVs created %d runs", n-before)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUICSVUpload: the start form of a definition with a CSV param is a
// multipart form with a file input; an uploaded file becomes the run's
// param; a ragged file comes back on the form with its reason and creates
// nothing; a file over the limit is a 413 page.
func TestUICSVUpload(t *testing.T) {
	e := newUIEnv(t, 30, registerCSVTouch(t))
	c := e.client()
	c.login(uiAliceToken)
	page := c.get("/definitions/ui_csv_touch")
	if !strings.Contains(page.body, `enctype="multipart/form-data"`) || !strings.Contains(page.body, `type="file"`) {
		t.Fatalf("the start form has no file upload:\n%s", formTag(page.body, "/definitions/ui_csv_touch/runs"))
	}
	csrf := csrfOf(t, page.body)
	post := func(file string) uiResp {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("csrf", csrf)
		mw.WriteField("when", "now")
		fw, _ := mw.CreateFormFile("p.items", "items.csv")
		io.WriteString(fw, file)
		mw.Close()
		req, _ := http.NewRequest("POST", e.srv.URL+"/definitions/ui_csv_touch/runs", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		for _, ck := range c.cookies {
			req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return uiResp{code: resp.StatusCode, body: string(b), header: resp.Header}
	}
	r := post("id\n3\n1\n2\n")
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/runs/") {
		t.Fatalf("upload: %d to %q\n%s", r.code, r.location(), r.body)
	}
	var id int64
	fmt.Sscanf(strings.TrimPrefix(r.location(), "/runs/"), "%d", &id)
	var p struct{ Items string }
	if err := json.Unmarshal(e.run(id).Params, &p); err != nil || p.Items != "id\n3\n1\n2\n" {
		t.Fatalf("run %d params %s (%v)", id, e.run(id).Params, err)
	}
	count := func() int {
		pg, _ := e.st.ListRuns(context.Background(), store.RunFilter{})
		return len(pg.Items)
	}
	before := count()
	r = post("id,x\n1,2\n3\n")
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "line 3 has 1 fields, the header has 2") || !strings.Contains(r.body, `id="run-form"`) {
		t.Errorf("ragged upload: %d\n%s", r.code, r.body)
	}
	r = post("id\n" + strings.Repeat("1\n", params.MaxCSVBytes/2+1))
	if r.code != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "a file param holds at most") {
		t.Errorf("huge upload: %d\n%s", r.code, r.body)
	}
	if n := count(); n != before {
		t.Errorf("refused uploads created %d runs", n-before)
	}
	// The run page shows a long CSV cut, not the whole file.
	long := post("id\n" + strings.Repeat("1\n", 5000))
	if long.code != http.StatusSeeOther {
		t.Fatalf("long upload: %d\n%s", long.code, long.body)
	}
	run := c.get(long.location())
	if !strings.Contains(run.body, "(10003 bytes in all, 5001 lines)") || len(run.body) > 100_000 {
		t.Errorf("run page of a 10 kB CSV: %d bytes, cut marker present %v", len(run.body), strings.Contains(run.body, "bytes in all"))
	}
}

// csvTouchParams name the ui_items to touch, one id per CSV row.
type csvTouchParams struct {
	Items params.CSV `json:"items" required:"true" headers:"id" help:"one item id per row"`
}

// registerCSVTouch adds ui_csv_touch, a CSV backfill touching the items
// its rows name, to the env's registry.
func registerCSVTouch(t *testing.T) func(*web.Options) {
	return func(o *web.Options) {
		j, err := backfills.NewCSV(backfills.CSVDefinition[csvTouchParams]{
			Name:        "ui_csv_touch",
			Description: "Touch the items a CSV names.",
			CSV:         func(p csvTouchParams) params.CSV { return p.Items },
			ProcessRows: func(ctx context.Context, r *backfills.Rows[csvTouchParams]) error {
				for _, rec := range r.Records {
					if err := r.DB.Model(&uiItem{}).Where("id = ?", rec["id"]).
						Updates(map[string]any{"touched": gorm.Expr("touched + 1"), "note": "csv"}).Error; err != nil {
						return err
					}
				}
				return nil
			},
			Options: backfills.Options{BatchSize: 10, MaxInFlight: 2, MaxAttempts: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Registry.Register(j); err != nil {
			t.Fatal(err)
		}
	}
}
