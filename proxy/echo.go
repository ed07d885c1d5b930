package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// NewEcho returns the builtin:echo backend: it answers 200 with a JSON
// description of the request it received (method, path, query, host,
// headers, remote address), so that a newcomer can see what the gateway
// sends upstream, X-User-Id included. It is a demo backend; its JSON work
// is not on the gateway's hot path.
func NewEcho() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers := make(map[string][]string, len(r.Header))
		for k, v := range r.Header {
			if k == "User-Agent" && len(v) == 1 && v[0] == "" {
				continue // ReverseProxy's "send no User-Agent" marker
			}
			headers[k] = v
		}
		body, err := json.MarshalIndent(struct {
			Method     string              `json:"method"`
			Path       string              `json:"path"`
			RawQuery   string              `json:"raw_query"`
			Host       string              `json:"host"`
			Headers    map[string][]string `json:"headers"`
			RemoteAddr string              `json:"remote_addr"`
		}{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, headers, r.RemoteAddr}, "", "  ")
		if err != nil {
			http.Error(w, "echo: cannot encode", http.StatusInternalServerError)
			return
		}
		body = append(body, '\n')
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})
}

// handlerTransport is an http.RoundTripper that serves requests with an
// in-process handler, so the builtin backend goes through ReverseProxy's
// Rewrite exactly like a network upstream. It buffers the response, which
// suits a small echo and nothing that streams.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// Present the request as a server would see it.
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "in-process"
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := &recorder{header: make(http.Header)}
	t.h.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(rec.status) + " " + http.StatusText(rec.status),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// recorder is a minimal buffering ResponseWriter.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
