package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/dripflow/dripflow/pkg/params"
)

// MaxRunBodyBytesDefault bounds the body of a request that starts a run
// (or previews one) when Options.MaxRunBodyBytes is 0: such a body may
// carry a CSV param of up to params.MaxCSVBytes, which as a JSON string
// grows by at most twice for quotes and line breaks, and other params
// need room too (11 MiB). Other requests keep Options.MaxBodyBytes.
const MaxRunBodyBytesDefault = 2*params.MaxCSVBytes + MaxBodyBytesDefault

// bodyLimit returns the size bound of r's body; path is r's path below the
// base path.
func (s *Server) bodyLimit(r *http.Request, path string) int64 {
	if r.Method == http.MethodPost && (path == "/api/v1/runs" ||
		strings.HasPrefix(path, "/definitions/") && (strings.HasSuffix(path, "/runs") || strings.HasSuffix(path, "/preview"))) {
		return s.opts.MaxRunBodyBytes
	}
	return s.opts.MaxBodyBytes
}

// errUploadTooLarge is an uploaded file over params.MaxCSVBytes.
var errUploadTooLarge = errors.New("upload too large")

// parseUploads reads a multipart form (the start form of a definition
// with a CSV param): its values join r.PostForm, and each file's text
// becomes the value of its field, as if typed in, for the params to check.
// A form that is not multipart is left alone.
func parseUploads(r *http.Request) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return nil
	}
	// Files beyond 1 MiB go to temporary files, removed by net/http.
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		return err
	}
	for name, files := range r.MultipartForm.File {
		if len(files) == 0 || files[0].Size == 0 && files[0].Filename == "" {
			continue // no file chosen
		}
		if files[0].Size > params.MaxCSVBytes {
			return fmt.Errorf("%w: %s is %d bytes; a file param holds at most %d bytes (%d MiB)", errUploadTooLarge,
				files[0].Filename, files[0].Size, params.MaxCSVBytes, params.MaxCSVBytes>>20)
		}
		f, err := files[0].Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(f, params.MaxCSVBytes+1))
		f.Close()
		if err != nil {
			return err
		}
		r.PostForm.Set(name, string(b))
	}
	return nil
}

// Strings longer than shownStringMax (a CSV param's text) are shown cut to
// shownStringCut bytes on pages, with their full size.
const (
	shownStringMax = 2048
	shownStringCut = 512
)

// shortenLongStrings returns raw, a JSON object, with its long string
// values cut for showing (see shownStringMax); anything else as it is.
func shortenLongStrings(raw json.RawMessage) json.RawMessage {
	if len(raw) <= shownStringMax {
		return raw
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return raw
	}
	for k, v := range obj {
		s, ok := v.(string)
		if !ok || len(s) <= shownStringMax {
			continue
		}
		cut := shownStringCut
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		obj[k] = fmt.Sprintf("%s… (%d bytes in all, %d lines)", s[:cut], len(s), strings.Count(s, "\n"))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return raw
	}
	return b.Bytes()
}
