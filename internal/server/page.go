package server

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/regmirror/regmirror/internal/schedule"
)

//go:embed assets
var assets embed.FS

// The front page and the task pages; links are relative (base), so the
// page also works behind a reverse proxy that serves it under a path.
var (
	frontPage = mustTemplates("", "assets/layout.html", "assets/page.html")
	taskPage  = mustTemplates("../", "assets/layout.html", "assets/task.html")
)

func mustTemplates(base string, files ...string) *template.Template {
	funcs := template.FuncMap{
		"base":  func() string { return base },
		"esc":   url.PathEscape,
		"bytes": humanBytes,
		"dur":   humanDuration,
		"secs":  func(s float64) string { return humanDuration(time.Duration(s * float64(time.Second))) },
		"iso":   func(t any) string { return timeOf(t).UTC().Format(time.RFC3339) },
		"stamp": func(t any) string { return timeOf(t).UTC().Format("2006-01-02 15:04:05 UTC") },
		"tm": func(t any) *time.Time {
			if tt := timeOf(t); !tt.IsZero() {
				return &tt
			}
			return nil
		},
		"button": func(csrf, name string) map[string]string { return map[string]string{"CSRF": csrf, "Name": name} },
		"running": func(ts []TaskView) bool {
			for _, t := range ts {
				if t.Current != nil {
					return true
				}
			}
			return false
		},
		"failing": func(ts []TaskView) bool {
			for _, t := range ts {
				if len(t.Failures) > 0 {
					return true
				}
			}
			return false
		},
	}
	return template.Must(template.New("").Funcs(funcs).ParseFS(assets, files...))
}

func timeOf(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case *time.Time:
		if t != nil {
			return *t
		}
	}
	return time.Time{}
}

// securityHeaders: the page loads nothing but its own stylesheet and
// script, may not be framed (a "run now" click cannot be stolen), and
// sends no Referer with a task name elsewhere.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func render(w http.ResponseWriter, t *template.Template, name string, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, v any) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// pageRoutes adds the status page to mux.
func (s *State) pageRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "assets")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		render(w, frontPage, "page.html", s.Page())
	})
	mux.HandleFunc("GET /assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		file := r.PathValue("file")
		if !strings.HasSuffix(file, ".css") && !strings.HasSuffix(file, ".js") {
			http.NotFound(w, r)
			return
		}
		securityHeaders(w)
		w.Header().Set("Cache-Control", "max-age=300")
		http.ServeFileFS(w, r, static, file)
	})
	mux.HandleFunc("GET /tasks/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if tp, ok := s.TaskPage(name); ok {
			render(w, taskPage, "task.html", tp)
			return
		}
		if base, ok := strings.CutSuffix(name, ".json"); ok {
			if tp, ok := s.TaskPage(base); ok {
				writeJSON(w, tp)
				return
			}
		}
		http.Error(w, fmt.Sprintf("no task %q", name), http.StatusNotFound)
	})
	mux.HandleFunc("POST /tasks/{name}/run", s.runNow)
}

// runNow queues a run of a task, for the page's "run now" button. It is
// refused unless the daemon allows it, unless the request comes from the
// page itself (same origin, the process's CSRF token), and while a run of
// the task is going or queued.
func (s *State) runNow(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if s.trigger == nil {
		http.Error(w, "run now is off: start serve with --allow-trigger", http.StatusForbidden)
		return
	}
	if err := sameOrigin(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	token := r.PostFormValue("csrf")
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) != 1 {
		http.Error(w, "missing or wrong csrf token: reload the page and try again", http.StatusForbidden)
		return
	}
	name := r.PathValue("name")
	switch err := s.trigger(name); {
	case errors.Is(err, schedule.ErrUnknownTask):
		http.Error(w, fmt.Sprintf("no task %q", name), http.StatusNotFound)
		return
	case errors.Is(err, schedule.ErrRunning):
		http.Error(w, fmt.Sprintf("task %q: %v", name, err), http.StatusConflict)
		return
	case err != nil:
		http.Error(w, fmt.Sprintf("task %q: %v", name, err), http.StatusInternalServerError)
		return
	}
	// Back to the page the button was on; relative, as every link.
	http.Redirect(w, r, "../"+url.PathEscape(name), http.StatusSeeOther)
}

// sameOrigin refuses a request a browser marks as sent from another site:
// Sec-Fetch-Site (sent by every current browser) must say same-origin, and
// an Origin header must name this host. Clients that send neither (curl)
// still need the CSRF token, which only the page shows.
func sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-origin request refused (Sec-Fetch-Site: %s)", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return errors.New("cross-origin request refused (Origin is not this host)")
		}
	}
	return nil
}
