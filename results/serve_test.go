package results

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/raftcheck/harness/checker"
)

// makeStore builds a store with runs of every verdict, latest links, and a secret outside it
// reachable through symlinks.
func makeStore(t *testing.T) (store, secret string) {
	t.Helper()
	base := t.TempDir()
	store = filepath.Join(base, "store")
	secret = filepath.Join(base, "secret.txt")
	if err := os.WriteFile(secret, []byte("SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx := makeRun(t, store, "register-partition", "20260102T030405", false)
	if err := WriteReport(fx.dir); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		test, stamp string
		v           any // nil: no results.json
	}{
		{"register-partition", "20260101T000000", checker.Valid},
		{"set-kill", "20260103T000000", checker.Unknown},
		{"set-kill", "20260104T000000", nil},
		{"set-kill", "20260104T000000-1", checker.Valid},
	} {
		dir := filepath.Join(store, r.test, r.stamp)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, HistoryFile), nil, 0o644)
		if r.v != nil {
			if err := WriteJSON(filepath.Join(dir, ResultsFile), map[string]any{"valid": r.v, "checkers": map[string]any{}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := MarkLatest(store, fx.dir); err != nil {
		t.Fatal(err)
	}
	// Symlinks out of the store, absolute and relative.
	must(t, os.Symlink(secret, filepath.Join(fx.dir, "abs.txt")))
	must(t, os.Symlink("../../../secret.txt", filepath.Join(fx.dir, "rel.txt")))
	must(t, os.Symlink(base, filepath.Join(store, "escape")))
	must(t, os.Symlink("..", filepath.Join(store, "register-partition", "up")))
	return store, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, q, _ := strings.Cut(path, "?")
	req.URL.Opaque, req.URL.RawQuery = p, q // send the path exactly as written, encoded dots included
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestListRuns(t *testing.T) {
	store, _ := makeStore(t)
	runs, err := ListRuns(store)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.Path()+" "+r.Verdict)
	}
	want := []string{
		"set-kill/20260104T000000-1 valid",
		"set-kill/20260104T000000 incomplete",
		"set-kill/20260103T000000 unknown",
		"register-partition/20260102T030405 invalid",
		"register-partition/20260101T000000 valid",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !runs[3].Report || runs[0].Report || runs[3].Start != time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) {
		t.Fatalf("report flags or start wrong: %+v", runs)
	}
}

func TestServeIndexFilter(t *testing.T) {
	store, _ := makeStore(t)
	srv := httptest.NewServer(NewServer(store))
	defer srv.Close()
	rows := func(page string) int { return strings.Count(page, "<tr class=") }
	for _, c := range []struct {
		query string
		rows  int
	}{
		{"/", 5},
		{"/?test=set-kill", 3},
		{"/?verdict=valid", 2},
		{"/?test=set-kill&verdict=valid", 1},
		{"/?verdict=incomplete", 1},
		{"/?test=nothing", 0},
	} {
		code, page, hdr := get(t, srv, c.query)
		if code != 200 || rows(page) != c.rows {
			t.Errorf("%s: status %d, %d rows, want 200 and %d", c.query, code, rows(page), c.rows)
		}
		if !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: no CSP", c.query)
		}
	}
	if code, _, _ := get(t, srv, "/?verdict=%3Cscript%3E"); code != http.StatusBadRequest {
		t.Errorf("bad verdict filter: status %d, want 400", code)
	}
	_, page, _ := get(t, srv, "/?test=%3Cscript%3Ealert(1)%3C/script%3E")
	assertInert(t, page)
	// Newest first.
	_, page, _ = get(t, srv, "/")
	if i, j := strings.Index(page, "20260104T000000-1"), strings.Index(page, "20260101T000000"); i < 0 || j < 0 || i > j {
		t.Errorf("index is not newest first")
	}
}

func TestServeFiles(t *testing.T) {
	store, _ := makeStore(t)
	srv := httptest.NewServer(NewServer(store))
	defer srv.Close()
	ok := []string{
		"/runs/register-partition/20260102T030405/report.html",
		"/runs/register-partition/20260102T030405/nodes/n1.log",
		"/runs/latest/report.html",
		"/runs/register-partition/latest/history.jsonl",
		"/runs/register-partition/20260102T030405/",
		"/runs/",
	}
	for _, p := range ok {
		if code, body, _ := get(t, srv, p); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if _, _, hdr := get(t, srv, "/runs/register-partition/20260102T030405/nodes/n1.log"); !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("log served as %q", hdr.Get("Content-Type"))
	}
	refused := []string{
		"/runs/../secret.txt",
		"/runs/%2e%2e/secret.txt",
		"/runs/%2E%2E/%2E%2E/secret.txt",
		"/runs/register-partition/..%2f..%2fsecret.txt",
		"/runs/register-partition/20260102T030405/abs.txt",
		"/runs/register-partition/20260102T030405/rel.txt",
		"/runs/escape/secret.txt",
		"/runs/register-partition/up/../secret.txt",
		"/runs/register-partition/up/up/secret.txt",
		"/runs//etc/passwd",
		"/runs/" + filepath.ToSlash(store) + "/latest/report.html",
		"/runs/.hidden",
		"/zip/escape.zip",
		"/zip/..%2f..%2fsecret.zip",
		"/zip/%2e%2e.zip",
		"/zip/.zip",
		"/etc/passwd",
	}
	for _, p := range refused {
		code, body, _ := get(t, srv, p)
		if code != 404 && code != 400 {
			t.Errorf("GET %s: %d, want 404 or 400", p, code)
		}
		if strings.Contains(body, "SECRET") {
			t.Errorf("GET %s leaked the secret", p)
		}
	}
	if code, _, _ := get(t, srv, "/runs/register-partition/20260102T030405"); code != http.StatusMovedPermanently {
		t.Errorf("folder without slash: %d, want a redirect", code)
	}
	resp, err := srv.Client().Post(srv.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestServeZip(t *testing.T) {
	store, _ := makeStore(t)
	srv := httptest.NewServer(NewServer(store))
	defer srv.Close()
	for _, p := range []string{"/zip/register-partition/20260102T030405.zip", "/zip/latest.zip"} {
		code, body, hdr := get(t, srv, p)
		if code != 200 || hdr.Get("Content-Type") != "application/zip" {
			t.Fatalf("GET %s: %d %s", p, code, hdr.Get("Content-Type"))
		}
		zr, err := zip.NewReader(bytes.NewReader([]byte(body)), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name[strings.Index(f.Name, "/")+1:])
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			if strings.Contains(string(b), "SECRET") {
				t.Fatalf("zip holds the secret in %s", f.Name)
			}
		}
		sort.Strings(names)
		want := []string{"history.jsonl", "linear-r1.html", "nodes/n1.log", "nodes/n2.log", "nodes/n3.log", "report.html", "results.json", "test.json"}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("%s holds %v, want %v (symlinks left out)", p, names, want)
		}
	}
	if code, _, _ := get(t, srv, "/zip/nothing/here.zip"); code != 404 {
		t.Errorf("zip of a missing run: %d", code)
	}
}

func TestWriteJUnit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	cases := []JUnitCase{
		{Name: "a #1", Dir: "store/a/1", Valid: checker.Valid, Duration: 1500 * time.Millisecond},
		{Name: "a #2", Dir: "store/a/2", Valid: checker.Invalid, Reason: `linearizable: key "<x>" & "y"` + "\x01", Duration: time.Second},
		{Name: "a #3", Dir: "store/a/3", Valid: checker.Unknown, Reason: "timeout"},
	}
	if err := WriteJUnit(path, "harness run", cases); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b, &got); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, b)
	}
	// A strict token pass, too.
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("token: %v", err)
		}
	}
	if len(got.Suites) != 1 {
		t.Fatalf("%d suites", len(got.Suites))
	}
	s := got.Suites[0]
	if s.Tests != 3 || s.Failures != 1 || s.Errors != 1 || s.Time != "2.500" || len(s.Cases) != 3 {
		t.Fatalf("suite %+v", s)
	}
	if c := s.Cases[0]; c.Failure != nil || c.Error != nil || c.SystemOut != "run folder: store/a/1" {
		t.Errorf("valid case %+v", c)
	}
	if c := s.Cases[1]; c.Failure == nil || !strings.HasPrefix(c.Failure.Message, `linearizable: key "<x>" & "y"`) || c.Failure.Type != "invalid" {
		t.Errorf("invalid case %+v", c.Failure)
	}
	if c := s.Cases[2]; c.Error == nil || c.Error.Message != "timeout" || c.Error.Type != "unknown" {
		t.Errorf("unknown case %+v", c.Error)
	}
}
