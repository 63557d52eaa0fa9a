package tasks

import (
	"strings"
	"testing"
)

// FuzzPayloadRoundTrip: a payload DecodeBatchPayload accepts is one the
// enqueuing side would write (jsonPayload accepts it) and reads back
// unchanged from that encoding; a refused one says it is a batch payload.
func FuzzPayloadRoundTrip(f *testing.F) {
	for _, s := range []string{
		`{"run":1,"seq":2}`, `{"run":1,"seq":2,"retry":3,"def":"x","rescue":"e2"}`, `{"run":9223372036854775807,"seq":1,"rescue":"r0"}`,
		`{"run":1,"seq":2,"rescue":"r01"}`, `{"run":0,"seq":1}`, `{"run":1,"seq":2,"retry":-1}`, `{"run":1.5,"seq":2}`,
		`{"run":1,"seq":2,"def":"\u0000\xff"}`,
		`{"run":1,"seq":2,"trace":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`,
		`{"run":1,"seq":2,"trace":"00-00000000000000000000000000000000-b7ad6b7169203331-01"}`,
		`{"run":1,"seq":2,"trace":"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"}`,
		`{"run":1,"seq":2,"trace":"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"}`, `{"run":1,"seq":2,"trace":7}`, `{"RUN":1,"Seq":2}`, `{}`, `null`, `[]`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeBatchPayload(b)
		if err != nil {
			if !strings.Contains(err.Error(), "batch payload") {
				t.Fatalf("error %q does not say what was decoded", err)
			}
			return
		}
		enc, err := jsonPayload(p)
		if err != nil {
			t.Fatalf("decoded %+v, which the enqueuing side refuses: %v", p, err)
		}
		back, err := DecodeBatchPayload(enc)
		if err != nil || back != p {
			t.Fatalf("round trip of %+v through %s: %+v, %v", p, enc, back, err)
		}
	})
}
